using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Keeps the WebSocket fan-out loop alive and reports it to PgNotify's health check (Core's public
/// <see cref="IPgNotifyLoopStatus"/>): an exception that escapes the loop (a bug; bad data is handled per change inside
/// it) is logged, counted and shown as the loop's failure, and the loop starts again after a short, doubling delay.
/// Only the app's shutdown ends it. The loop's own per-change failures are counted here too. Its state is written by
/// the fan-out loop and read from any thread.
/// </summary>
internal sealed class FanOutSupervisor(WebSocketMetrics metrics, TimeProvider time, ILogger<PgChangeRouter> logger) : IPgNotifyLoopStatus
{
    internal static readonly TimeSpan RestartInitialDelay = TimeSpan.FromMilliseconds(100);
    internal static readonly TimeSpan RestartMaxDelay = TimeSpan.FromSeconds(5);

    private int _state;
    private int _restarts;
    private long _failedChanges;
    private Exception? _lastFault;

    /// <summary>Anything but Running means changes are not being routed.</summary>
    public PgRouterState State => (PgRouterState)Volatile.Read(ref _state);

    /// <summary>How often the fan-out loop died and was restarted since the app started.</summary>
    public int RestartCount => Volatile.Read(ref _restarts);

    /// <summary>How many changes (or gaps) failed to route because of an unexpected exception since the app started.</summary>
    public long FailedChangeCount => Interlocked.Read(ref _failedChanges);

    /// <summary>The exception that last ended the fan-out loop, if it ever died.</summary>
    public Exception? LastFault => Volatile.Read(ref _lastFault);

    public string? Failure => State == PgRouterState.Running
        ? null
        : $"PgNotify's WebSocket fan-out loop failed ({LastFault?.GetType().Name}: {LastFault?.Message}) and is " +
          "restarting: no change reaches any socket until it runs again.";

    public void AddData(IDictionary<string, object> data)
    {
        data["fanout_state"] = State.ToString();
        data["fanout_restarts"] = RestartCount;
        data["fanout_failed_changes"] = FailedChangeCount;
    }

    /// <summary>Counts a change (or a route of it) that the loop failed to route and went on.</summary>
    public void ChangeFailed()
    {
        Interlocked.Increment(ref _failedChanges);
        metrics.RouteFailed();
    }

    /// <summary>Runs <paramref name="loop"/> until <paramref name="stoppingToken"/>, restarting it after any escaped exception.</summary>
    /// <param name="loop">The fan-out loop; it returns when the app stops.</param>
    /// <param name="onFailed">Runs after the loop died, before the delay (the router tells every socket to resync).</param>
    /// <param name="stoppingToken">The app's stop.</param>
    public async Task RunAsync(Func<CancellationToken, Task> loop, Action onFailed, CancellationToken stoppingToken)
    {
        var delay = RestartInitialDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            Volatile.Write(ref _state, (int)PgRouterState.Running);
            var fault = await RunOnceAsync(loop, stoppingToken).ConfigureAwait(false);
            if (fault is null)
            {
                return;
            }

            Volatile.Write(ref _state, (int)PgRouterState.Restarting);
            Volatile.Write(ref _lastFault, fault);
            var restarts = Interlocked.Increment(ref _restarts);
            metrics.RouterRestarted();
            PgChangeRouter.Log.RouterFaulted(logger, restarts, delay, fault);
            onFailed();
            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RestartMaxDelay.Ticks));
        }
    }

    /// <summary>The exception that ended the loop, or null when it ended because the app stops.</summary>
    private static async Task<Exception?> RunOnceAsync(Func<CancellationToken, Task> loop, CancellationToken stoppingToken)
    {
        try
        {
            await loop(stoppingToken).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            return ex;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }
}
