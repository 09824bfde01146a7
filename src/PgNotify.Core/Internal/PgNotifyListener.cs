using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// The hosted service that starts PgNotify's listening pipeline: on the host's start it refuses a transaction-mode
/// pooler and installs the SQL (<see cref="ListenerSetup"/>), then runs the LISTEN connection (the connect loop) and the
/// change source's dispatcher, each under the <see cref="LoopSupervisor"/>. Registered by <c>AddPgNotifyCore</c>;
/// applications read its state through <see cref="IPgNotifyStatus"/>. The parts are described in docs/architecture.md.
/// </summary>
internal sealed class PgNotifyListener : BackgroundService
{
    private readonly PgNotifyOptions _options;
    private readonly ListenerConnection _connection;
    private readonly ListenerSetup _setup;
    private readonly NotificationInbox _inbox;
    private readonly IChangeSource _source;
    private readonly LoopSupervisor _supervisor;
    private readonly PgChangeFeed _feed;
    private readonly ILogger _logger;

    public PgNotifyListener(
        IOptions<PgNotifyOptions> options,
        ListenerConnection connection,
        ListenerSetup setup,
        NotificationInbox inbox,
        IChangeSource source,
        LoopSupervisor supervisor,
        PgChangeFeed feed,
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
        _logger = logger;
        metrics.ObserveState(() => (int)connection.State);
        metrics.ObserveQueueUsage(() => connection.NotifyQueueUsage);
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
            () => _supervisor.SuperviseAsync(LoopSupervisor.DispatcherLoop, _source.RunAsync, _source.OnDispatcherFailed, stoppingToken), CancellationToken.None);
        _connection.SetState(PgListenerState.Connecting);
        try
        {
            await _supervisor.SuperviseAsync(LoopSupervisor.ConnectLoop, _connection.ConnectLoopAsync, null, stoppingToken).ConfigureAwait(false);
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
