using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using PgNotify.Internal;

namespace PgNotify;

/// <summary>
/// The hosted service that holds PgNotify's one dedicated LISTEN connection and feeds every notification, as a
/// typed <see cref="PgChange"/>, to the consumers of <see cref="IPgChangeFeed"/>.
/// </summary>
/// <remarks>
/// <para>
/// The connection comes from a data source of PgNotify's own (no pooling, no multiplexing, TCP keepalive on), so a
/// terminated backend never clears the application's pool. The notification handler only hands the payload to a
/// bounded inbox; parsing, fetching oversized rows (on a second connection) and fan-out happen on a dispatcher task,
/// never on Npgsql's read path.
/// </para>
/// <para>
/// Every <see cref="PgNotifyOptions.HealthCheckInterval"/> the connection is probed with a query, so a dead or
/// half-open connection is noticed within seconds. On any loss the listener reconnects with exponential backoff and
/// full jitter (capped at <see cref="PgNotifyOptions.ReconnectMaxDelay"/>), and once it listens again it emits a
/// <see cref="PgChangeGap"/> (<see cref="PgChangeGapReason.ListenerReconnected"/>): NOTIFY does not keep what was sent
/// while nobody listened.
/// </para>
/// </remarks>
public sealed partial class PgNotifyListener : BackgroundService
{
    private readonly PgNotifyOptions _options;
    private readonly PgChangeFeed _feed;
    private readonly PgNotifyConnections _connections;
    private readonly PgNotifyMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Backoff _backoff;
    private readonly Channel<string?> _inbox;
    private readonly Lock _stateGate = new();
    private TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _state;
    private long _inboxDropped;
    private long _reconnects;
    private bool _installed;
    private double _queueUsage = double.NaN;
    private long _deliveredPosition;
    private bool _warnedLiveTrigger;
    private long _overflowDropped;
    private DateTimeOffset _overflowReportedAt = DateTimeOffset.MinValue;
    private readonly ChangeLogReader _changeLogReader;
    private readonly RateLimitedReport _rejected;
    private readonly RecentIds _fetchedRefs;
    private string? _lastConnectError;
    private bool _everListened;
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal PgNotifyListener(
        IOptions<PgNotifyOptions> options,
        PgChangeFeed feed,
        PgNotifyConnections connections,
        PgNotifyMetrics metrics,
        TimeProvider time,
        ILogger<PgNotifyListener> logger)
    {
        _options = options.Value;
        _feed = feed;
        _connections = connections;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _backoff = new Backoff(_options.ReconnectInitialDelay, _options.ReconnectMaxDelay);
        _changeLogReader = new ChangeLogReader(maxHoles: _options.MaxChangeLogHoles);
        _rejected = new RateLimitedReport(time, RejectedReportInterval);
        _fetchedRefs = new RecentIds(_options.LargePayloadRetention, MaxRememberedRefs);
        Status = new PgNotifyStatus(time, _options.HealthCheckInterval);
        // The inbox's only writer is Npgsql's read path, its only reader the dispatcher.
        _inbox = Channel.CreateBounded<string?>(new BoundedChannelOptions(_options.InboxCapacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        metrics.ObserveState(() => (int)State);
        metrics.ObserveQueueUsage(() => NotifyQueueUsage);
    }

    /// <summary>Loops that died and setup problems, for the health check.</summary>
    internal PgNotifyStatus Status { get; }

    /// <summary>Test hook: runs at each turn of a loop, outside its per-item handling, with the loop's name.</summary>
    internal Action<string>? LoopFaultHook { get; set; }

    /// <summary>The connection's current state.</summary>
    public PgListenerState State => (PgListenerState)Volatile.Read(ref _state);

    /// <summary>How many times the listener has connected again after losing its connection.</summary>
    public long ReconnectCount => Interlocked.Read(ref _reconnects);

    /// <summary>The error that last cost the listener its connection, or <see langword="null"/>.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>
    /// The fill level of PostgreSQL's NOTIFY queue (<c>pg_notification_queue_usage()</c>, 0 to 1) at the last probe, or
    /// <see langword="null"/> before the first. A value that keeps growing means some listener of the database is stuck.
    /// </summary>
    public double? NotifyQueueUsage => Volatile.Read(ref _queueUsage) is var usage && !double.IsNaN(usage) ? usage : null;

    /// <summary>
    /// With lossless delivery, the position through which every change has been handed to consumers (all lower
    /// positions are delivered or known never to exist); otherwise 0.
    /// </summary>
    public long DeliveredPosition => Volatile.Read(ref _deliveredPosition);

    /// <summary>
    /// With lossless delivery, completes once the change log is settled up to where it stood when the listener started,
    /// so that every position at or below <see cref="DeliveredPosition"/> can be replayed from the log.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the listener has caught up.</returns>
    public Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken = default) => _caughtUp.Task.WaitAsync(cancellationToken);

    /// <summary>
    /// Completes when the listener is listening: from then on, every committed change of a watched table is received.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes once the state is <see cref="PgListenerState.Listening"/>.</returns>
    public Task WaitUntilListeningAsync(CancellationToken cancellationToken = default)
    {
        lock (_stateGate)
        {
            return _listening.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Installs the SQL and enables the configured tables (when <see cref="PgNotifyOptions.InstallTriggers"/> is on),
    /// then starts listening in the background. A configuration error (an unknown table or column, missing rights)
    /// fails the start with a message that says what to change; an unreachable database does not: the listener keeps
    /// trying to connect.
    /// </summary>
    /// <param name="cancellationToken">Aborts the start.</param>
    /// <returns>A task that completes once the listener has started.</returns>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefuseTransactionPoolerAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
        {
            Log.StartDeferred(_logger, _options.InstallTriggers ? "install its triggers" : "check its connection", ex);
            _lastConnectError = ConnectErrorKey(ex); // the stack is logged once: the connect loop logs one line per retry
        }

        if (_options.InstallTriggers && _lastConnectError is null)
        {
            try
            {
                await InstallAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                Log.StartDeferred(_logger, "install its triggers", ex);
                _lastConnectError = ConnectErrorKey(ex);
            }
        }

        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Each loop runs under a supervisor: an exception that escapes a loop turns health Unhealthy, is logged and
        // counted, and the loop starts again after a backoff. Only the host's stop ends them.
        var dispatcher = Task.Run(() => SuperviseAsync(DispatcherLoop, DispatchAsync, stoppingToken), CancellationToken.None);
        var maintenance = Task.Run(() => SuperviseAsync(MaintenanceLoop, MaintainAsync, stoppingToken), CancellationToken.None);
        SetState(PgListenerState.Connecting);
        try
        {
            await SuperviseAsync(ConnectLoop, ConnectLoopAsync, stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            SetState(PgListenerState.Stopped);
            _inbox.Writer.TryComplete();
            await dispatcher.ConfigureAwait(false);
            await maintenance.ConfigureAwait(false);
            _feed.CompleteAll();
            Log.Stopped(_logger);
        }
    }

    internal const string ConnectLoop = "connect";
    internal const string DispatcherLoop = "dispatcher";
    internal const string MaintenanceLoop = "maintenance";

    /// <summary>
    /// Runs <paramref name="loop"/> until the host stops. A loop returns only when it is done (the host stops); an
    /// exception that escapes it is a bug or an input nobody foresaw: it is logged (1023), counted, reported by the
    /// health check as Unhealthy, and the loop starts again after a backoff. The host is never stopped by it.
    /// </summary>
    private async Task SuperviseAsync(string name, Func<CancellationToken, Task> loop, CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await loop(stoppingToken).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Status.LoopFailed(name, ex);
                _metrics.LoopRestarted(name);
                var delay = _backoff.Next(attempt++);
                Log.LoopFailed(_logger, name, delay.TotalMilliseconds, ex);
                if (name == DispatcherLoop)
                {
                    // The item it held may be lost: consumers are told.
                    PublishGap(PgChangeGapReason.Unreadable, null, _time.GetUtcNow());
                }

                try
                {
                    await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                Status.LoopRestarted(name);
            }
        }
    }

    private async Task ConnectLoopAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            LoopFaultHook?.Invoke(ConnectLoop);
            try
            {
                if (_options.InstallTriggers && !_installed)
                {
                    await InstallAsync(stoppingToken).ConfigureAwait(false);
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
                var delay = _backoff.Next(attempt++);
                var key = ConnectErrorKey(ex);
                if (string.Equals(key, _lastConnectError, StringComparison.Ordinal))
                {
                    // The same error again (a wrong port, a database that is down): one line, not another stack trace.
                    Log.ConnectionStillLost(_logger, attempt, delay.TotalMilliseconds, ex.Message);
                }
                else
                {
                    _lastConnectError = key;
                    Log.ConnectionLost(_logger, attempt, delay.TotalMilliseconds, ex);
                }

                await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private static string ConnectErrorKey(Exception ex) => ex.GetType().FullName + ": " + ex.Message;

    private async Task ListenAsync(bool reconnecting, int attempts, Action onListening, CancellationToken stoppingToken)
    {
        var connection = await _connections.Listener.OpenConnectionAsync(stoppingToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            connection.Notification += OnNotification;
            var backend = await BackendPidAsync(connection, stoppingToken).ConfigureAwait(false);
            await using (var listen = new NpgsqlCommand("LISTEN " + QuoteIdentifier(_options.Channel), connection))
            {
                await listen.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
            }

            // Through a pooler in transaction mode each statement may run on another server connection, and the
            // LISTEN stays behind on one that others use: notifications would silently go nowhere.
            if (await BackendPidAsync(connection, stoppingToken).ConfigureAwait(false) != backend)
            {
                throw new InvalidOperationException(TransactionPoolerMessage);
            }

            if (!_options.InstallTriggers)
            {
                // Someone else set the database up: say now (and on every reconnect) what is missing, not when changes fail to arrive.
                await CheckSetupAsync(stoppingToken).ConfigureAwait(false);
            }

            if (_options.LosslessDelivery)
            {
                // The log reader's starting point is fixed before anyone is told changes flow.
                await _changeLogReader.EnsureStartedAsync(_connections.Side, stoppingToken).ConfigureAwait(false);
            }

            onListening();
            _lastConnectError = null;
            if (Status.LoopProgressed(ConnectLoop))
            {
                Log.LoopRecovered(_logger, ConnectLoop);
            }

            SetState(PgListenerState.Listening);
            if (reconnecting)
            {
                // Ordered after everything received before the loss: consumers see exactly where the gap is.
                Interlocked.Increment(ref _reconnects);
                _metrics.Reconnected();
                if (!_inbox.Writer.TryWrite(null))
                {
                    Interlocked.Increment(ref _inboxDropped);
                }

                if (_options.LosslessDelivery)
                {
                    Log.ReconnectedLossless(_logger, _options.Channel, attempts);
                }
                else
                {
                    Log.Reconnected(_logger, _options.Channel, attempts);
                }
            }
            else
            {
                Log.Listening(_logger, _options.Channel);
            }

            // Every wait and probe runs under a watchdog: whatever the socket does (a half-open connection answers
            // nothing, ever), the connection is abandoned once it overruns its time by HealthCheckTimeout.
            using var watchdog = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            var probeTimeout = Math.Max(1, (int)Math.Ceiling(_options.HealthCheckTimeout.TotalSeconds));
            var nextProbe = _time.GetUtcNow() + _options.HealthCheckInterval;
            while (true)
            {
                stoppingToken.ThrowIfCancellationRequested();
                var remaining = nextProbe - _time.GetUtcNow();
                if (remaining > TimeSpan.Zero)
                {
                    // Waits in slices of at most a second: a stop whose cancellation reaches Npgsql just as a wait starts
                    // (and is not seen by it) then costs at most a slice, not a whole probe interval.
                    var slice = remaining < MaxWaitSlice ? remaining : MaxWaitSlice;
                    watchdog.CancelAfter(slice + _options.HealthCheckTimeout);
                    await connection.WaitAsync(slice, watchdog.Token).ConfigureAwait(false);
                    continue;
                }

                // Liveness probe on the listening connection itself: a dead or half-open TCP connection fails here
                // within HealthCheckTimeout. It also reads how full PostgreSQL's NOTIFY queue is.
                watchdog.CancelAfter(_options.HealthCheckTimeout);
                await using (var probe = new NpgsqlCommand("SELECT pg_notification_queue_usage()", connection) { CommandTimeout = probeTimeout })
                {
                    Log.Probing(_logger, _options.Channel);
                    var usage = await probe.ExecuteScalarAsync(watchdog.Token).ConfigureAwait(false);
                    Volatile.Write(ref _queueUsage, Convert.ToDouble(usage, System.Globalization.CultureInfo.InvariantCulture));
                }

                nextProbe = _time.GetUtcNow() + _options.HealthCheckInterval;
            }
        }
    }

    private void OnNotification(object sender, NpgsqlNotificationEventArgs e)
    {
        // Runs on Npgsql's read path: hand off and return, never block.
        if (!string.Equals(e.Channel, _options.Channel, StringComparison.Ordinal))
        {
            return;
        }

        _metrics.NotificationReceived();
        if (!_inbox.Writer.TryWrite(e.Payload))
        {
            Interlocked.Increment(ref _inboxDropped);
        }
    }

    private async Task DispatchAsync(CancellationToken stoppingToken)
    {
        if (_options.LosslessDelivery)
        {
            await DispatchFromLogAsync(stoppingToken).ConfigureAwait(false);
            return;
        }

        while (true)
        {
            if (!_inbox.Reader.TryRead(out var payload))
            {
                if (!await WaitForInboxAsync().ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            LoopFaultHook?.Invoke(DispatcherLoop);
            var now = _time.GetUtcNow();
            try
            {
                ReportOverflow(now, flush: false);
                await DispatchOneAsync(payload, now, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Nobody foresaw this one: it costs this notification alone, and consumers are told.
                _metrics.ItemFailed(DispatcherLoop);
                Log.DispatchFailed(_logger, _options.Channel, ex);
                PublishGap(PgChangeGapReason.Unreadable, 1, now);
                continue;
            }

            if (Status.LoopProgressed(DispatcherLoop))
            {
                Log.LoopRecovered(_logger, DispatcherLoop);
            }
        }
    }

    /// <summary>Handles one notification in live mode: a change, a reference to a parked one, or a reconnect marker.</summary>
    private async Task DispatchOneAsync(string? payload, DateTimeOffset now, CancellationToken stoppingToken)
    {
        if (payload is null)
        {
            PublishGap(PgChangeGapReason.ListenerReconnected, null, now);
            return;
        }

        PgChangePayload parsed;
        try
        {
            parsed = PgChangePayload.Parse(payload, now);
        }
        catch (FormatException ex)
        {
            // Anyone who can connect can NOTIFY: a payload the trigger did not write is dropped, not turned into a gap
            // (a forger must not make every socket resync).
            Reject("malformed", ex.Message);
            return;
        }

        if (parsed.IsWakeUp)
        {
            if (!_warnedLiveTrigger)
            {
                _warnedLiveTrigger = true;
                Log.LosslessTriggerWhileLive(_logger, _options.Channel);
            }

            return;
        }

        var change = parsed.Change;
        if (parsed.LargePayloadId is { } id)
        {
            var fetched = await FetchLargePayloadAsync(id, parsed.Header!, now, stoppingToken).ConfigureAwait(false);
            if (fetched.Gap)
            {
                PublishGap(PgChangeGapReason.Unreadable, 1, now);
                return;
            }

            change = fetched.Change;
            if (change is null)
            {
                return; // refused: logged and counted
            }
        }

        Log.ChangeReceived(_logger, change!.Operation, change.Table, change.TransactionId, change.Sequence);
        _feed.Publish(change);
    }

    /// <summary>Counts a notification that is not PgNotify's and logs it, at most one line per interval under a flood.</summary>
    private void Reject(string reason, string detail)
    {
        _metrics.NotificationRejected(reason);
        if (_rejected.Occurred(out var count))
        {
            Log.MalformedPayload(_logger, count, _options.Channel, detail);
        }
    }

    /// <summary>
    /// Lossless mode: notifications (and reconnects, and a timer) only wake the reader of pgnotify.change_log, which
    /// hands out every committed change once, in position order, whatever happened to the LISTEN connection.
    /// </summary>
    private async Task DispatchFromLogAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        var first = true;
        while (true)
        {
            // Wake on a notification or a reconnect marker, or after the poll interval (holes settle, missed wake-ups).
            // The first read is at once: what the log held at startup must be settled before clients resume.
            if (!first && !_inbox.Reader.TryPeek(out _))
            {
                var wait = _inbox.Reader.WaitToReadAsync(stoppingToken).AsTask();
                var delay = _changeLogReader.HoleCount > 0 ? TimeSpan.FromMilliseconds(50) : _options.ChangeLogPollInterval;
                if (await Task.WhenAny(wait, Task.Delay(delay, _time, stoppingToken)).ConfigureAwait(false) == wait && !await wait.ConfigureAwait(false))
                {
                    return; // the inbox completed: the listener stopped
                }
            }

            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            LoopFaultHook?.Invoke(DispatcherLoop);
            _feed.FlushPendingGaps(); // a consumer owed a gap gets it even when no further change comes (retried each poll)
            while (_inbox.Reader.TryRead(out var wake))
            {
                if (wake is not null && !wake.StartsWith("{\"v\":1,\"wake\":", StringComparison.Ordinal) && !_warnedLiveTrigger)
                {
                    // A full payload: some table's trigger is in live mode, and its changes are not in the log.
                    _warnedLiveTrigger = true;
                    Log.LiveTriggerWhileLossless(_logger, _options.Channel);
                }
            }

            Interlocked.Exchange(ref _inboxDropped, 0);
            try
            {
                ChangeLogBatch batch;
                do
                {
                    batch = await _changeLogReader.ReadAsync(_connections.Side, _time.GetUtcNow(), stoppingToken).ConfigureAwait(false);
                    Log.ChangeLogRead(_logger, batch.Changes.Count, _changeLogReader.DeliveredThrough, _changeLogReader.PendingCount, _changeLogReader.HoleCount);
                    foreach (var (position, reason) in batch.Unreadable)
                    {
                        _metrics.ItemFailed(DispatcherLoop);
                        Log.ChangeLogRowUnreadable(_logger, position, reason);
                    }

                    if (batch.AbandonedHoles > 0)
                    {
                        Log.ChangeLogHolesOverflow(_logger, _options.MaxChangeLogHoles, batch.AbandonedHoles);
                    }

                    if (batch.Gap is { } gap)
                    {
                        if (batch.PrunedPastReader)
                        {
                            Log.ChangeLogPrunedPastReader(_logger);
                        }

                        _metrics.Gap(gap.Reason);
                        _feed.Publish(gap);
                    }

                    foreach (var change in batch.Changes)
                    {
                        try
                        {
                            Log.ChangeReceived(_logger, change.Operation, change.Table, change.TransactionId, change.Sequence);
                            _feed.Publish(change);
                        }
                        catch (Exception ex)
                        {
                            // Nobody foresaw this one: it costs this change alone, and consumers are told.
                            _metrics.ItemFailed(DispatcherLoop);
                            Log.DispatchFailed(_logger, _options.Channel, ex);
                            PublishGap(PgChangeGapReason.Unreadable, 1, _time.GetUtcNow());
                        }
                    }

                    Volatile.Write(ref _deliveredPosition, _changeLogReader.DeliveredThrough);
                    if (_changeLogReader.CaughtUp)
                    {
                        _caughtUp.TrySetResult();
                    }
                }
                while (batch.MoreAvailable);

                first = false;

                attempt = 0;
                if (Status.LoopProgressed(DispatcherLoop))
                {
                    Log.LoopRecovered(_logger, DispatcherLoop);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Transient or not, the reader must keep going: its position state survives, so nothing is lost by retrying.
                var backoff = _backoff.Next(attempt++);
                Log.ChangeLogReadFailed(_logger, backoff.TotalMilliseconds, ex);
                try
                {
                    await Task.Delay(backoff, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Waits for the next notification. While dropped notifications are waiting to be reported, it waits at most until
    /// their report is due, then reports them: a drop is always followed by a gap, even if nothing else arrives.
    /// </summary>
    /// <returns><see langword="false"/> when the inbox is completed (the listener stopped).</returns>
    private async Task<bool> WaitForInboxAsync()
    {
        var wait = _inbox.Reader.WaitToReadAsync(CancellationToken.None).AsTask();
        // Nothing to dispatch: a consumer owed a gap (its buffer overflowed on the last burst) gets it now, or, while its
        // buffer is still full, at the next retry.
        var gapsOwed = _feed.FlushPendingGaps();
        var overflowOwed = _overflowDropped != 0 || Interlocked.Read(ref _inboxDropped) != 0;
        if (!gapsOwed && !overflowOwed)
        {
            return await wait.ConfigureAwait(false);
        }

        var overflowDue = overflowOwed ? _overflowReportedAt + OverflowReportInterval - _time.GetUtcNow() : TimeSpan.MaxValue;
        var due = gapsOwed && GapRetryInterval < overflowDue ? GapRetryInterval : overflowDue;
        if (due > TimeSpan.Zero && await Task.WhenAny(wait, Task.Delay(due, _time)).ConfigureAwait(false) == wait)
        {
            return await wait.ConfigureAwait(false);
        }

        if (due == overflowDue)
        {
            ReportOverflow(_time.GetUtcNow(), flush: true);
        }

        return true; // the caller comes back here, to retry what is still owed
    }

    /// <summary>
    /// Under sustained overload notifications are dropped on every item: they are reported (one gap, one log line with
    /// the count) at most once per <see cref="OverflowReportInterval"/>, and always eventually, so an overload does
    /// not turn into a storm of log lines and resync frames, and no drop goes unreported.
    /// </summary>
    private void ReportOverflow(DateTimeOffset now, bool flush)
    {
        _overflowDropped += Interlocked.Exchange(ref _inboxDropped, 0);
        if (_overflowDropped > 0 && (flush || now - _overflowReportedAt >= OverflowReportInterval))
        {
            _overflowReportedAt = now;
            Log.InboxOverflow(_logger, _overflowDropped);
            PublishGap(PgChangeGapReason.ListenerOverflow, _overflowDropped, now);
            _overflowDropped = 0;
        }
    }

    private static readonly TimeSpan OverflowReportInterval = TimeSpan.FromSeconds(1);

    /// <summary>Under a flood of foreign notifications, at most one log line (1006) per this interval.</summary>
    internal static readonly TimeSpan RejectedReportInterval = TimeSpan.FromSeconds(10);

    /// <summary>How many delivered <c>pgnotify.large_payload</c> ids are remembered (within LargePayloadRetention) to refuse a replayed reference.</summary>
    internal const int MaxRememberedRefs = 100_000;

    /// <summary>The longest single wait for notifications; see the listen loop.</summary>
    private static readonly TimeSpan MaxWaitSlice = TimeSpan.FromSeconds(1);

    /// <summary>How often a gap owed to a consumer whose buffer is still full is offered again while nothing arrives.</summary>
    private static readonly TimeSpan GapRetryInterval = TimeSpan.FromMilliseconds(100);

    private void PublishGap(PgChangeGapReason reason, long? dropped, DateTimeOffset now)
    {
        _metrics.Gap(reason);
        _feed.Publish(new PgChangeGap(reason, dropped, now));
    }

    /// <summary>
    /// Reads a parked oversized row. Refused (no gap) when the reference is one already delivered or the row does not
    /// fit the notification's header: a replayed or forged reference. A gap when the row is gone or cannot be read;
    /// transient errors are retried.
    /// </summary>
    private async Task<(PgChange? Change, bool Gap)> FetchLargePayloadAsync(long id, PgChange header, DateTimeOffset receivedAt, CancellationToken stoppingToken)
    {
        if (_fetchedRefs.Contains(id, receivedAt))
        {
            Reject("ref_replayed", $"it references oversized change {id}, which was already delivered.");
            return (null, false);
        }

        for (var attempt = 0; ; attempt++)
        {
            string? payload;
            long? oldest;
            try
            {
                // With the row, the oldest id still parked: a row missing below it was pruned before it was read (a
                // gap); a row missing at or above it was never written (a forged reference: dropped, no gap).
                await using var command = _connections.Side.CreateCommand(
                    "SELECT (SELECT payload FROM pgnotify.large_payload WHERE id = $1), (SELECT min(id) FROM pgnotify.large_payload)");
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
                await using var reader = await command.ExecuteReaderAsync(stoppingToken).ConfigureAwait(false);
                await reader.ReadAsync(stoppingToken).ConfigureAwait(false);
                payload = reader.IsDBNull(0) ? null : reader.GetString(0);
                oldest = reader.IsDBNull(1) ? null : reader.GetInt64(1);
            }
            catch (Exception ex) when (IsTransient(ex) && !stoppingToken.IsCancellationRequested)
            {
                var delay = _backoff.Next(attempt);
                Log.LargePayloadFetchFailed(_logger, id, delay.TotalMilliseconds, ex);
                await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                continue;
            }
            catch (PostgresException ex)
            {
                // Not transient (typically 42501: the role may not read pgnotify.large_payload): this change is lost,
                // the next ones are not. Health says how to fix it.
                var fix = ex.SqlState == PostgresErrorCodes.InsufficientPrivilege
                    ? SetupCheck.LargePayloadGrant(RoleName())
                    : $"PgNotify cannot read pgnotify.large_payload ({ex.SqlState}: {ex.MessageText}): run the current sql/install.sql as the owner of the pgnotify schema.";
                Status.SetProblem(LargePayloadProblem, fix);
                _metrics.ItemFailed(DispatcherLoop);
                Log.LargePayloadUnreadable(_logger, id, fix, ex);
                return (null, true);
            }

            Status.SetProblem(LargePayloadProblem, null);
            if (payload is null && oldest is { } min && id < min)
            {
                Log.LargePayloadMissing(_logger, id);
                return (null, true);
            }

            if (payload is null)
            {
                Reject("ref_missing", $"it references oversized change {id}, which was never parked (or was deleted by hand).");
                return (null, false);
            }

            PgChange? change;
            try
            {
                change = PgChangePayload.Parse(payload, receivedAt).Change;
            }
            catch (FormatException ex)
            {
                Reject("malformed", $"oversized change {id}: {ex.Message}");
                return (null, false);
            }

            if (change is null || change.Table != header.Table || change.Operation != header.Operation
                || change.TransactionId != header.TransactionId || change.Sequence != header.Sequence)
            {
                Reject("ref_mismatch", $"oversized change {id} is not the change the notification describes ({header.Operation} on {header.Table}, xid {header.TransactionId}, #{header.Sequence}).");
                return (null, false);
            }

            _fetchedRefs.Add(id, receivedAt);
            return (change, false);
        }
    }

    private const string LargePayloadProblem = "fetch:large_payload";

    private string? RoleName()
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(_connections.Side.ConnectionString).Username;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private async Task CheckSetupAsync(CancellationToken stoppingToken)
    {
        var problems = await SetupCheck.RunAsync(_connections.Side, _options, stoppingToken).ConfigureAwait(false);
        var known = Status.Problems.ToHashSet(StringComparer.Ordinal);
        Status.ClearProblems(SetupProblemPrefix);
        if (!problems.Any(p => p.Contains("pgnotify.large_payload", StringComparison.Ordinal)))
        {
            Status.SetProblem(LargePayloadProblem, null);
        }

        for (var i = 0; i < problems.Count; i++)
        {
            Status.SetProblem(SetupProblemPrefix + i.ToString("D4", System.Globalization.CultureInfo.InvariantCulture), problems[i]);
            if (!known.Contains(problems[i]))
            {
                Log.SetupProblem(_logger, problems[i]); // once per problem, not on every reconnect while it lasts
            }
        }
    }

    private const string SetupProblemPrefix = "setup:";

    private bool _maintenanceForbiddenReported;

    private async Task MaintainAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.MaintenanceInterval, _time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            LoopFaultHook?.Invoke(MaintenanceLoop);
            try
            {
                await using var command = _connections.Side.CreateCommand(
                    "DELETE FROM pgnotify.large_payload WHERE created_at < now() - $1");
                command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _options.LargePayloadRetention });
                var pruned = await command.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                if (_options.LosslessDelivery)
                {
                    pruned += await new PgChangeLog(_connections, _time).PruneAsync(
                        DeliveredPosition, _options.ChangeLogRetention, _options.ChangeLogMaxRows, stoppingToken).ConfigureAwait(false);
                }

                Log.Pruned(_logger, pruned);
                if (Status.LoopProgressed(MaintenanceLoop))
                {
                    Log.LoopRecovered(_logger, MaintenanceLoop);
                }
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege && !stoppingToken.IsCancellationRequested)
            {
                // An app role that may not delete (it does not own PgNotify's objects): the trigger prunes both tables
                // with the retention of pgnotify.settings, so nothing grows without bound. Said once, not every tick;
                // the next tick tries again, so a later GRANT takes effect by itself.
                if (!_maintenanceForbiddenReported)
                {
                    _maintenanceForbiddenReported = true;
                    Log.MaintenanceNotPermitted(_logger, ex.MessageText);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever else failed (a lost connection), the next tick tries again.
                _metrics.ItemFailed(MaintenanceLoop);
                Log.MaintenanceFailed(_logger, ex);
            }
        }
    }

    private const string TransactionPoolerMessage =
        "PgNotify's LISTEN connection runs through a connection pooler in transaction mode (for example pgbouncer with " +
        "pool_mode = transaction): its statements run on different server connections, so LISTEN cannot work and " +
        "notifications would be lost. Point PgNotify's connection string directly at PostgreSQL, or at a pooler in session mode.";

    /// <summary>
    /// Fails the start when the connection string leads to a transaction-mode pooler (see <see cref="TransactionPoolerMessage"/>).
    /// Directly or through session pooling, a connection keeps its server backend, and a second connection gets another.
    /// Through transaction pooling, a connection's statements may run on different backends, and an idle connection's
    /// backend is handed to the next client: either shows.
    /// </summary>
    private async Task RefuseTransactionPoolerAsync(CancellationToken cancellationToken)
    {
        var first = await _connections.Listener.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (first.ConfigureAwait(false))
        {
            var backend = await BackendPidAsync(first, cancellationToken).ConfigureAwait(false);
            var second = await _connections.Listener.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (second.ConfigureAwait(false))
            {
                var other = await BackendPidAsync(second, cancellationToken).ConfigureAwait(false);
                var again = await BackendPidAsync(first, cancellationToken).ConfigureAwait(false);
                if (other == backend || again != backend)
                {
                    throw new InvalidOperationException(TransactionPoolerMessage);
                }
            }
        }
    }

    private static async Task<int> BackendPidAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        return (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private async Task InstallAsync(CancellationToken cancellationToken)
    {
        var installer = new PgNotifyInstaller(_connections.Side, _logger);
        await installer.InstallAsync(cancellationToken).ConfigureAwait(false);
        await installer.SetRetentionAsync(
            _options.ChangeLogRetention, _options.ChangeLogMaxRows, _options.LargePayloadRetention, cancellationToken).ConfigureAwait(false);
        // Excluded columns are matched by table, not by spelling: "profiles" and "public.profiles" are one table.
        var exclusions = _options.ExcludedColumns.ToDictionary(e => PgTableName.Parse(e.Key), e => e.Value);
        foreach (var text in _options.Tables)
        {
            var table = PgTableName.Parse(text);
            exclusions.TryGetValue(table, out var excluded);
            try
            {
                await installer.EnableTableAsync(table, _options.Channel, excluded, _options.LosslessDelivery, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn)
            {
                throw new InvalidOperationException(
                    $"PgNotify cannot watch '{text}': {ex.MessageText}. Create it, or fix PgNotify:Tables / PgNotify:ExcludedColumns.", ex);
            }
        }

        _installed = true;
        Log.Installed(_logger, _options.Tables.Count, string.Join(", ", _options.Tables));
    }

    private void SetState(PgListenerState state)
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

    private static bool IsTransient(Exception ex) => ex switch
    {
        PostgresException pg => pg.IsTransient,
        NpgsqlException => true,
        TimeoutException => true,
        System.Net.Sockets.SocketException => true,
        IOException => true,
        _ => false,
    };

    private static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
