using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Runs PgNotify's long-running loops (connect, dispatcher, maintenance) and keeps them alive: a loop returns only when
/// the host stops; an exception that escapes it is a bug or an input nobody foresaw: it is logged (1023), counted,
/// reported by the health check as Unhealthy (through <see cref="Status"/>), and the loop starts again after a backoff.
/// The host is never stopped by it. Each loop still handles each of its items in its own try/catch.
/// </summary>
internal sealed class LoopSupervisor
{
    internal const string ConnectLoop = "connect";
    internal const string DispatcherLoop = "dispatcher";
    internal const string MaintenanceLoop = "maintenance";

    private readonly PgNotifyMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public LoopSupervisor(IOptions<PgNotifyOptions> options, PgNotifyMetrics metrics, TimeProvider time, ILogger<PgNotifyListener> logger)
    {
        _metrics = metrics;
        _time = time;
        _logger = logger;
        Backoff = new Backoff(options.Value.ReconnectInitialDelay, options.Value.ReconnectMaxDelay);
        RestartBackoff = Backoff;
        Status = new PgNotifyStatus(time, options.Value.HealthCheckInterval);
    }

    /// <summary>Loops that died and setup problems, for the health check.</summary>
    public PgNotifyStatus Status { get; }

    /// <summary>The backoff between restarts, shared by every retry of PgNotify.Core.</summary>
    public Backoff Backoff { get; }

    /// <summary>The backoff between a loop's failure and its restart: <see cref="Backoff"/>, unless a test sets another.</summary>
    public Backoff RestartBackoff { get; set; }

    /// <summary>Test hook: runs at each turn of a loop, outside its per-item handling, with the loop's name.</summary>
    public Action<string>? LoopFaultHook { get; set; }

    /// <summary>Calls <see cref="LoopFaultHook"/> for a loop's turn.</summary>
    public void Turn(string loop) => LoopFaultHook?.Invoke(loop);

    /// <summary>A loop handled an item: a failure it had is over (logged once, 1024).</summary>
    public void Progressed(string loop)
    {
        if (Status.LoopProgressed(loop))
        {
            PgNotifyLog.LoopRecovered(_logger, loop);
        }
    }

    /// <summary>Runs <paramref name="loop"/> until the host stops, restarting it after any escaped exception.</summary>
    /// <param name="name">The loop's name, in logs, metrics and health.</param>
    /// <param name="loop">The loop; it returns when the host stops.</param>
    /// <param name="onFailed">Runs after the loop failed, before the backoff (the dispatcher reports a gap).</param>
    /// <param name="stoppingToken">The host's stop.</param>
    public async Task SuperviseAsync(string name, Func<CancellationToken, Task> loop, Action? onFailed, CancellationToken stoppingToken)
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
                // Logged and counted before health shows it: whoever sees Unhealthy finds the line (1023) already written.
                var delay = RestartBackoff.Next(attempt++);
                PgNotifyLog.LoopFailed(_logger, name, delay.TotalMilliseconds, ex);
                _metrics.LoopRestarted(name);
                Status.LoopFailed(name, ex);
                onFailed?.Invoke();
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
}
