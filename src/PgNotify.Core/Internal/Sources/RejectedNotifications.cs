using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Notifications the trigger did not write (anyone who can connect can NOTIFY): each is counted
/// (<c>pgnotify.listener.notifications.rejected</c>, by reason) and dropped without a gap; under a flood at most one log
/// line (1006) per <see cref="ReportInterval"/>.
/// </summary>
internal sealed class RejectedNotifications(IOptions<PgNotifyOptions> options, PgNotifyMetrics metrics, TimeProvider time, ILogger<PgNotifyListener> logger)
{
    /// <summary>Under a flood of foreign notifications, at most one log line (1006) per this interval.</summary>
    internal static readonly TimeSpan ReportInterval = TimeSpan.FromSeconds(10);

    private readonly RateLimitedReport _report = new(time, ReportInterval);

    /// <summary>Counts a notification that is not PgNotify's and logs it, at most one line per interval.</summary>
    public void Reject(string reason, string detail)
    {
        metrics.NotificationRejected(reason);
        if (_report.Occurred(out var count))
        {
            PgNotifyLog.MalformedPayload(logger, count, options.Value.Channel, detail);
        }
    }
}
