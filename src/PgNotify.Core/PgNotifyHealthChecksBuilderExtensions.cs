using Microsoft.Extensions.Diagnostics.HealthChecks;
using PgNotify;
using PgNotify.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers PgNotify's health check.</summary>
public static class PgNotifyHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check that reports the PgNotify listener's state: healthy while it listens;
    /// <paramref name="failureStatus"/> while it is not connected, or while one of its loops (connect, dispatcher,
    /// maintenance, and the WebSocket fan-out when it is registered) has died and not yet recovered (the description
    /// names the loop and the error); degraded while a
    /// setup problem costs changes (a missing GRANT, a table in <c>PgNotify:Tables</c> that is not enabled; the
    /// description names the fix), or when PostgreSQL's NOTIFY queue is at least
    /// <paramref name="queueUsageDegradedThreshold"/> full. Its data holds the state, the reconnect count, the queue
    /// usage, the failed loops, the problems and the last error.
    /// </summary>
    /// <param name="builder">The health checks builder (<c>services.AddHealthChecks()</c>).</param>
    /// <param name="name">The check's name. Default: <c>pgnotify</c>.</param>
    /// <param name="failureStatus">The status while the listener is not connected. Default: <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to filter checks by (for example <c>ready</c>).</param>
    /// <param name="queueUsageDegradedThreshold">The NOTIFY queue fill (0 to 1) from which the check is degraded. Default: 0.5.</param>
    /// <returns>The builder, for chaining.</returns>
    public static IHealthChecksBuilder AddPgNotify(
        this IHealthChecksBuilder builder,
        string name = "pgnotify",
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        double queueUsageDegradedThreshold = 0.5)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentOutOfRangeException.ThrowIfNegative(queueUsageDegradedThreshold);
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => ListenerHealthCheck.Create(sp, queueUsageDegradedThreshold),
            failureStatus ?? HealthStatus.Unhealthy,
            tags));
    }
}
