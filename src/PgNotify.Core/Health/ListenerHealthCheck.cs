using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PgNotify.Internal;

/// <summary>
/// Reports the listener's connection state, its loops (Unhealthy while one that died has not recovered), setup problems
/// (Degraded: changes are or will be lost until fixed), how full PostgreSQL's NOTIFY queue is, and every registered
/// <see cref="IPgNotifyLoopStatus"/> (the WebSocket fan-out). Needs nothing from ASP.NET Core.
/// </summary>
internal sealed class ListenerHealthCheck(
    IPgNotifyStatus status, PgNotifyStatus loops, IEnumerable<IPgNotifyLoopStatus> others, double queueUsageDegradedThreshold) : IHealthCheck
{
    /// <summary>The check as <c>AddHealthChecks().AddPgNotify()</c> registers it, with every registered loop status.</summary>
    public static ListenerHealthCheck Create(IServiceProvider services, double queueUsageDegradedThreshold) => new(
        services.GetRequiredService<IPgNotifyStatus>(),
        services.GetRequiredService<LoopSupervisor>().Status,
        services.GetServices<IPgNotifyLoopStatus>(),
        queueUsageDegradedThreshold);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var state = status.State;
        var data = new Dictionary<string, object>
        {
            ["state"] = state.ToString(),
            ["reconnects"] = status.ReconnectCount,
        };
        if (status.NotifyQueueUsage is { } usage)
        {
            data["notify_queue_usage"] = usage;
        }

        if (status.DeliveredPosition > 0)
        {
            data["delivered_position"] = status.DeliveredPosition;
        }

        if (state != PgListenerState.Listening && status.LastError is { } error)
        {
            data["last_error"] = error.Message;
        }

        var failures = loops.Failures;
        var problems = loops.Problems;
        if (failures.Count > 0)
        {
            data["failed_loops"] = string.Join(", ", failures.Select(f => f.Loop));
        }

        if (problems.Count > 0)
        {
            data["problems"] = problems.ToArray();
        }

        IPgNotifyLoopStatus? failedOther = null;
        foreach (var other in others)
        {
            other.AddData(data);
            failedOther ??= other.Failure is null ? null : other;
        }

        return Task.FromResult(Result(context, state, failures, problems, failedOther, data));
    }

    private HealthCheckResult Result(
        HealthCheckContext context, PgListenerState state, IReadOnlyList<LoopFailure> failures, IReadOnlyList<string> problems,
        IPgNotifyLoopStatus? failedOther, Dictionary<string, object> data)
    {
        if (failedOther is not null)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, failedOther.Failure, failedOther.LastFault, data);
        }

        if (failures.Count > 0)
        {
            var failure = failures[0];
            return new HealthCheckResult(
                context.Registration.FailureStatus,
                $"PgNotify's {failure.Loop} loop failed ({failure.Error.GetType().Name}: {failure.Error.Message}) and is " +
                (failure.RestartedAt is null ? "waiting to restart" : "restarting") + ": changes may not be delivered.",
                failure.Error,
                data);
        }

        if (state != PgListenerState.Listening)
        {
            return new HealthCheckResult(
                context.Registration.FailureStatus,
                $"PgNotify's listener is {state.ToString().ToLowerInvariant()}: changes are not being received." +
                (problems.Count > 0 ? " " + string.Join(" ", problems) : ""),
                status.LastError,
                data);
        }

        if (problems.Count > 0)
        {
            return HealthCheckResult.Degraded(string.Join(" ", problems), data: data);
        }

        if (status.NotifyQueueUsage is { } fill && fill >= queueUsageDegradedThreshold)
        {
            return HealthCheckResult.Degraded(
                $"PostgreSQL's NOTIFY queue is {fill:P0} full: some listener of the database is stuck in a long transaction.", data: data);
        }

        return HealthCheckResult.Healthy("PgNotify is listening.", data);
    }
}
