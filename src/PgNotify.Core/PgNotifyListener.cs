using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PgNotify.Internal;

namespace PgNotify;

/// <summary>
/// The hosted service that starts PgNotify's listening pipeline: the LISTEN connection and the change source's
/// dispatcher, each under the loop supervisor. Prefer <see cref="IPgNotifyStatus"/> to read its state; this type stays
/// resolvable, with the same members, for existing callers.
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
/// while nobody listened. The parts are described in docs/architecture.md.
/// </para>
/// </remarks>
public sealed class PgNotifyListener : BackgroundService
{
    internal const string ConnectLoop = LoopSupervisor.ConnectLoop;
    internal const string DispatcherLoop = LoopSupervisor.DispatcherLoop;
    internal const string MaintenanceLoop = LoopSupervisor.MaintenanceLoop;

    private readonly PgNotifyOptions _options;
    private readonly ListenerConnection _connection;
    private readonly ListenerSetup _setup;
    private readonly NotificationInbox _inbox;
    private readonly IChangeSource _source;
    private readonly LoopSupervisor _supervisor;
    private readonly PgChangeFeed _feed;
    private readonly IPgNotifyStatus _status;
    private readonly ILogger _logger;

    internal PgNotifyListener(
        IOptions<PgNotifyOptions> options,
        ListenerConnection connection,
        ListenerSetup setup,
        NotificationInbox inbox,
        IChangeSource source,
        LoopSupervisor supervisor,
        PgChangeFeed feed,
        IPgNotifyStatus status,
        PgNotifyMetrics metrics,
        ILogger<PgNotifyListener> logger)
    {
        _options = options.Value;
        _connection = connection;
        _setup = setup;
        _inbox = inbox;
        _source = source;
        _supervisor = supervisor;
        _feed = feed;
        _status = status;
        _logger = logger;
        metrics.ObserveState(() => (int)connection.State);
        metrics.ObserveQueueUsage(() => connection.NotifyQueueUsage);
    }

    /// <summary>Loops that died and setup problems, for the health check.</summary>
    internal PgNotifyStatus Status => _supervisor.Status;

    /// <summary>Test hook: runs at each turn of a loop, outside its per-item handling, with the loop's name.</summary>
    internal Action<string>? LoopFaultHook
    {
        get => _supervisor.LoopFaultHook;
        set => _supervisor.LoopFaultHook = value;
    }

    /// <summary>The connection's current state. Same as <see cref="IPgNotifyStatus.State"/>.</summary>
    public PgListenerState State => _status.State;

    /// <summary>How many times the listener has connected again after losing its connection.</summary>
    public long ReconnectCount => _status.ReconnectCount;

    /// <summary>The error that last cost the listener its connection, or <see langword="null"/>.</summary>
    public Exception? LastError => _status.LastError;

    /// <summary>
    /// The fill level of PostgreSQL's NOTIFY queue (<c>pg_notification_queue_usage()</c>, 0 to 1) at the last probe, or
    /// <see langword="null"/> before the first. A value that keeps growing means some listener of the database is stuck.
    /// </summary>
    public double? NotifyQueueUsage => _status.NotifyQueueUsage;

    /// <summary>
    /// With lossless delivery, the position through which every change has been handed to consumers (all lower
    /// positions are delivered or known never to exist); otherwise 0.
    /// </summary>
    public long DeliveredPosition => _status.DeliveredPosition;

    /// <summary>
    /// With lossless delivery, completes once the change log is settled up to where it stood when the listener started,
    /// so that every position at or below <see cref="DeliveredPosition"/> can be replayed from the log.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the listener has caught up.</returns>
    public Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken = default) => _status.WaitUntilCaughtUpAsync(cancellationToken);

    /// <summary>
    /// Completes when the listener is listening: from then on, every committed change of a watched table is received.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes once the state is <see cref="PgListenerState.Listening"/>.</returns>
    public Task WaitUntilListeningAsync(CancellationToken cancellationToken = default) => _status.WaitUntilListeningAsync(cancellationToken);

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
            await _setup.RefuseTransactionPoolerAsync(cancellationToken).ConfigureAwait(false);
            await _setup.CheckSourceAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ListenerSetup.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
        {
            PgNotifyLog.StartDeferred(_logger, _options.InstallTriggers ? "install its triggers" : "check its connection", ex);
            _connection.LastConnectError = ListenerConnection.ConnectErrorKey(ex); // the stack is logged once: the connect loop logs one line per retry
        }

        if (_options.InstallTriggers && _connection.LastConnectError is null)
        {
            try
            {
                await _setup.InstallAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ListenerSetup.IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                PgNotifyLog.StartDeferred(_logger, "install its triggers", ex);
                _connection.LastConnectError = ListenerConnection.ConnectErrorKey(ex);
            }
        }

        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Each loop runs under the supervisor: an exception that escapes a loop turns health Unhealthy, is logged and
        // counted, and the loop starts again after a backoff. Only the host's stop ends them.
        var dispatcher = Task.Run(
            () => _supervisor.SuperviseAsync(DispatcherLoop, _source.RunAsync, _source.OnDispatcherFailed, stoppingToken), CancellationToken.None);
        _connection.SetState(PgListenerState.Connecting);
        try
        {
            await _supervisor.SuperviseAsync(ConnectLoop, _connection.ConnectLoopAsync, null, stoppingToken).ConfigureAwait(false);
        }
        finally
        {
            _connection.SetState(PgListenerState.Stopped);
            _inbox.Complete();
            await dispatcher.ConfigureAwait(false);
            _feed.CompleteAll();
            PgNotifyLog.Stopped(_logger);
        }
    }
}
