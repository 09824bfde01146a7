using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Reports the listener's connection state, its loops (Unhealthy while one that died has not recovered), setup problems
/// (Degraded: changes are or will be lost until fixed) and how full PostgreSQL's NOTIFY queue is.
/// </summary>
/// <remarks>
/// With the WebSocket endpoint registered, the fan-out loop counts too: while it restarts after an unexpected
/// failure, no change reaches any socket, and the check reports the failure status.
/// </remarks>
internal sealed class PgNotifyHealthCheck(PgNotifyListener listener, PgChangeRouter? router, double queueUsageDegradedThreshold) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var data = new Dictionary<string, object>
        {
            ["state"] = listener.State.ToString(),
            ["reconnects"] = listener.ReconnectCount,
        };
        if (listener.NotifyQueueUsage is { } usage)
        {
            data["notify_queue_usage"] = usage;
        }

        if (listener.DeliveredPosition > 0)
        {
            data["delivered_position"] = listener.DeliveredPosition;
        }

        if (listener.State != PgListenerState.Listening && listener.LastError is { } error)
        {
            data["last_error"] = error.Message;
        }

        var failures = listener.Status.Failures;
        var problems = listener.Status.Problems;
        if (failures.Count > 0)
        {
            data["failed_loops"] = string.Join(", ", failures.Select(f => f.Loop));
        }

        if (problems.Count > 0)
        {
            data["problems"] = problems.ToArray();
        }

        if (router is not null)
        {
            data["fanout_state"] = router.State.ToString();
            data["fanout_restarts"] = router.RestartCount;
            data["fanout_failed_changes"] = router.FailedChangeCount;
        }

        HealthCheckResult result;
        if (router is not null && router.State != PgRouterState.Running)
        {
            var fault = router.LastFault;
            result = new HealthCheckResult(
                context.Registration.FailureStatus,
                $"PgNotify's WebSocket fan-out loop failed ({fault?.GetType().Name}: {fault?.Message}) and is restarting: " +
                "no change reaches any socket until it runs again.",
                fault,
                data);
        }
        else if (failures.Count > 0)
        {
            var failure = failures[0];
            result = new HealthCheckResult(
                context.Registration.FailureStatus,
                $"PgNotify's {failure.Loop} loop failed ({failure.Error.GetType().Name}: {failure.Error.Message}) and is " +
                (failure.RestartedAt is null ? "waiting to restart" : "restarting") + ": changes may not be delivered.",
                failure.Error,
                data);
        }
        else if (listener.State != PgListenerState.Listening)
        {
            result = new HealthCheckResult(
                context.Registration.FailureStatus,
                $"PgNotify's listener is {listener.State.ToString().ToLowerInvariant()}: changes are not being received." +
                (problems.Count > 0 ? " " + string.Join(" ", problems) : ""),
                listener.LastError,
                data);
        }
        else if (problems.Count > 0)
        {
            result = HealthCheckResult.Degraded(string.Join(" ", problems), data: data);
        }
        else if (listener.NotifyQueueUsage is { } fill && fill >= queueUsageDegradedThreshold)
        {
            result = HealthCheckResult.Degraded(
                $"PostgreSQL's NOTIFY queue is {fill:P0} full: some listener of the database is stuck in a long transaction.", data: data);
        }
        else
        {
            result = HealthCheckResult.Healthy("PgNotify is listening.", data);
        }

        return Task.FromResult(result);
    }
}
