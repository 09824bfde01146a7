using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// PgNotify's one dedicated LISTEN connection: connects, LISTENs, probes every
/// <see cref="PgNotifyOptions.HealthCheckInterval"/>, and reconnects with backoff on any loss. Notifications go to the
/// <see cref="NotificationInbox"/> from Npgsql's read path. Runs on the connect loop; its state is read from any thread.
/// </summary>
internal sealed class ListenerConnection(
    IOptions<PgNotifyOptions> options,
    PgNotifyConnections connections,
    ListenerSetup setup,
    NotificationInbox inbox,
    IChangeSource source,
    LoopSupervisor supervisor,
    PgNotifyMetrics metrics,
    TimeProvider time,
    ILogger<PgNotifyListener> logger)
{
    /// <summary>The longest single wait for notifications; see the listen loop.</summary>
    private static readonly TimeSpan MaxWaitSlice = TimeSpan.FromSeconds(1);

    private readonly PgNotifyOptions _options = options.Value;
    private readonly Lock _stateGate = new();
    private TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;
    private long _reconnects;
    private double _queueUsage = double.NaN;
    private bool _everListened;

    public PgListenerState State => (PgListenerState)Volatile.Read(ref _state);

    public long ReconnectCount => Interlocked.Read(ref _reconnects);

    public Exception? LastError { get; private set; }

    public double? NotifyQueueUsage => Volatile.Read(ref _queueUsage) is var usage && !double.IsNaN(usage) ? usage : null;

    /// <summary>The last connect error's key, so a repeated error is logged as one line, not another stack trace.</summary>
    public string? LastConnectError { get; set; }

    public Task WaitUntilListeningAsync(CancellationToken cancellationToken)
    {
        lock (_stateGate)
        {
            return _listening.Task.WaitAsync(cancellationToken);
        }
    }

    public static string ConnectErrorKey(Exception ex) => ex.GetType().FullName + ": " + ex.Message;

    public void SetState(PgListenerState state)
    {
        lock (_stateGate)
        {
            var previous = (PgListenerState)Interlocked.Exchange(ref _state, (int)state);
            if (state == PgListenerState.Listening)
            {
                _listening.TrySetResult();
            }
            else if (previous == PgListenerState.Listening)
            {
                _listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    /// <summary>The connect loop: (re)installs if needed, listens until the connection is lost, backs off, again.</summary>
    public async Task ConnectLoopAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            supervisor.Turn(LoopSupervisor.ConnectLoop);
            try
            {
                if (_options.InstallTriggers && !setup.Installed)
                {
                    await setup.InstallAsync(stoppingToken).ConfigureAwait(false);
                }

                await ListenAsync(_everListened, attempt, () => { _everListened = true; attempt = 0; }, stoppingToken)
                    .ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Anything else (including the watchdog's cancellation) means the connection is gone.
                LastError = ex;
                SetState(_everListened ? PgListenerState.Reconnecting : PgListenerState.Connecting);
                var delay = supervisor.Backoff.Next(attempt++);
                var key = ConnectErrorKey(ex);
                if (string.Equals(key, LastConnectError, StringComparison.Ordinal))
                {
                    // The same error again (a wrong port, a database that is down): one line, not another stack trace.
                    PgNotifyLog.ConnectionStillLost(logger, attempt, delay.TotalMilliseconds, ex.Message);
                }
                else
                {
                    LastConnectError = key;
                    PgNotifyLog.ConnectionLost(logger, attempt, delay.TotalMilliseconds, ex);
                }

                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private async Task ListenAsync(bool reconnecting, int attempts, Action onListening, CancellationToken stoppingToken)
    {
        var connection = await connections.Listener.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            connection.Notification += inbox.OnNotification;
            var backend = await ListenerSetup.BackendPidAsync(connection, stoppingToken).ConfigureAwait(false);
            await using (var listen = new NpgsqlCommand("LISTEN " + ListenerSetup.QuoteIdentifier(_options.Channel), connection))
            {
                await listen.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
            }

            // Through a pooler in transaction mode each statement may run on another server connection, and the
            // LISTEN stays behind on one that others use: notifications would silently go nowhere.
            if (await ListenerSetup.BackendPidAsync(connection, stoppingToken).ConfigureAwait(false) != backend)
            {
                throw new InvalidOperationException(ListenerSetup.TransactionPoolerMessage);
            }

            if (!_options.InstallTriggers)
            {
                // Someone else set the database up: say now (and on every reconnect) what is missing, not when changes fail to arrive.
                await setup.CheckSetupAsync(stoppingToken).ConfigureAwait(false);
            }

            await source.OnListeningAsync(stoppingToken).ConfigureAwait(false);
            onListening();
            LastConnectError = null;
            supervisor.Progressed(LoopSupervisor.ConnectLoop);
            SetState(PgListenerState.Listening);
            if (reconnecting)
            {
                Reconnected(attempts);
            }
            else
            {
                PgNotifyLog.Listening(logger, _options.Channel);
            }

            await ProbeWhileListeningAsync(connection, stoppingToken).ConfigureAwait(false);
        }
    }

    private void Reconnected(int attempts)
    {
        // Ordered after everything received before the loss: consumers see exactly where the gap is.
        Interlocked.Increment(ref _reconnects);
        metrics.Reconnected();
        inbox.MarkReconnected();
        if (source.LosesChangesOnReconnect)
        {
            PgNotifyLog.Reconnected(logger, _options.Channel, attempts);
        }
        else
        {
            PgNotifyLog.ReconnectedLossless(logger, _options.Channel, attempts);
        }
    }

    /// <summary>
    /// How long one wait for notifications may take, in whole milliseconds: at most <see cref="MaxWaitSlice"/>, and at
    /// least 1. Npgsql reads a wait of 0 ms as no timeout at all, so the last fraction of a millisecond before a probe,
    /// truncated, made the wait last until a notification came; on an idle connection the watchdog then dropped it.
    /// </summary>
    internal static int WaitMilliseconds(TimeSpan remaining) =>
        remaining >= MaxWaitSlice ? (int)MaxWaitSlice.TotalMilliseconds : Math.Max(1, (int)Math.Ceiling(remaining.TotalMilliseconds));

    /// <summary>
    /// Waits for notifications and probes the connection until it fails. Every wait and probe runs under a watchdog:
    /// whatever the socket does (a half-open connection answers nothing, ever), the connection is abandoned once it
    /// overruns its time by HealthCheckTimeout.
    /// </summary>
    private async Task ProbeWhileListeningAsync(NpgsqlConnection connection, CancellationToken stoppingToken)
    {
        using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var probeTimeout = Math.Max(1, (int)Math.Ceiling(_options.HealthCheckTimeout.TotalSeconds));
        var nextProbe = time.GetUtcNow() + _options.HealthCheckInterval;
        while (true)
        {
            stoppingToken.ThrowIfCancellationRequested();
            var remaining = nextProbe - time.GetUtcNow();
            if (remaining > TimeSpan.Zero)
            {
                // Waits in slices of at most a second: a stop whose cancellation reaches Npgsql just as a wait starts
                // (and is not seen by it) then costs at most a slice, not a whole probe interval.
                var slice = WaitMilliseconds(remaining);
                watchdog.CancelAfter(TimeSpan.FromMilliseconds(slice) + _options.HealthCheckTimeout);
                await connection.WaitAsync(slice, watchdog.Token).ConfigureAwait(false);
                continue;
            }

            // Liveness probe on the listening connection itself: a dead or half-open TCP connection fails here
            // within HealthCheckTimeout. It also reads how full PostgreSQL's NOTIFY queue is.
            watchdog.CancelAfter(_options.HealthCheckTimeout);
            await using (var probe = new NpgsqlCommand("SELECT pg_notification_queue_usage()", connection) { CommandTimeout = probeTimeout })
            {
                PgNotifyLog.Probing(logger, _options.Channel);
                var usage = await probe.ExecuteScalarAsync(watchdog.Token).ConfigureAwait(false);
                Volatile.Write(ref _queueUsage, Convert.ToDouble(usage, System.Globalization.CultureInfo.InvariantCulture));
            }

            nextProbe = time.GetUtcNow() + _options.HealthCheckInterval;
        }
    }
}
