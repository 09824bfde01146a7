using Microsoft.Extensions.Logging;

namespace PgNotify.Internal;

/// <summary>Every log line of PgNotify.Core, with its stable event id (1001-1099).</summary>
internal static partial class PgNotifyLog
{
    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "PgNotify is listening on channel '{Channel}'.")]
    public static partial void Listening(ILogger logger, string channel);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning,
        Message = "PgNotify's listener has no connection (attempt {Attempt}); trying again in {DelayMs:F0} ms.")]
    public static partial void ConnectionLost(ILogger logger, int attempt, double delayMs, Exception exception);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning,
        Message = "PgNotify is listening on channel '{Channel}' again after {Attempts} failed attempt(s); changes committed while it was disconnected were not notified, and consumers are told of the gap.")]
    public static partial void Reconnected(ILogger logger, string channel, int attempts);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Warning,
        Message = "PgNotify could not reach PostgreSQL at startup to {Step}; it keeps trying in the background.")]
    public static partial void StartDeferred(ILogger logger, string step, Exception exception);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "PgNotify's SQL is installed; watching {Count} table(s): {Tables}.")]
    public static partial void Installed(ILogger logger, int count, string tables);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning,
        Message = "PgNotify ignored {Count} notification(s) on channel '{Channel}' that its trigger did not write; the last: {Reason} (At most one line every 10 s while they continue; the metric pgnotify.listener.notifications.rejected counts each.)")]
    public static partial void MalformedPayload(ILogger logger, long count, string channel, string reason);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Error,
        Message = "PgNotify could not find oversized change {Id} in pgnotify.large_payload (pruned before it was read? raise PgNotify:LargePayloadRetention). Consumers are told of the gap.")]
    public static partial void LargePayloadMissing(ILogger logger, long id);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning,
        Message = "PgNotify could not fetch oversized change {Id}; trying again in {DelayMs:F0} ms.")]
    public static partial void LargePayloadFetchFailed(ILogger logger, long id, double delayMs, Exception exception);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning,
        Message = "PgNotify's inbox was full and {Dropped} notification(s) were dropped (raise PgNotify:InboxCapacity, or find what slows the dispatcher). Consumers are told of the gap. (At most once a second while it lasts.)")]
    public static partial void InboxOverflow(ILogger logger, long dropped);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "PgNotify's maintenance (pruning pgnotify.large_payload and pgnotify.change_log) failed; it will try again.")]
    public static partial void MaintenanceFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1029, Level = LogLevel.Information,
        Message = "PgNotify's app role may not prune pgnotify.large_payload / pgnotify.change_log ({Reason}). The trigger prunes them itself with the retention in pgnotify.settings, so they stay bounded; GRANT DELETE on them to prune from the app too.")]
    public static partial void MaintenanceNotPermitted(ILogger logger, string reason);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Debug, Message = "PgNotify pruned {Count} old row(s) from pgnotify.large_payload and pgnotify.change_log.")]
    public static partial void Pruned(ILogger logger, int count);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Information, Message = "PgNotify's listener stopped.")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 1013, Level = LogLevel.Trace, Message = "PgNotify received {Operation} on {Table} (xid {TransactionId}, #{Sequence}).")]
    public static partial void ChangeReceived(ILogger logger, PgChangeOperation operation, PgTableName table, long transactionId, long sequence);

    [LoggerMessage(EventId = 1015, Level = LogLevel.Information,
        Message = "PgNotify is listening on channel '{Channel}' again after {Attempts} failed attempt(s); with lossless delivery, changes committed meanwhile are read from the change log.")]
    public static partial void ReconnectedLossless(ILogger logger, string channel, int attempts);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Warning, Message = "PgNotify could not read the change log; trying again in {DelayMs:F0} ms.")]
    public static partial void ChangeLogReadFailed(ILogger logger, double delayMs, Exception exception);

    [LoggerMessage(EventId = 1017, Level = LogLevel.Error,
        Message = "pgnotify.change_log was pruned past what this listener had delivered (raise PgNotify:ChangeLogRetention / ChangeLogMaxRows, or find why it lagged). Consumers are told to resync.")]
    public static partial void ChangeLogPrunedPastReader(ILogger logger);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Trace, Message = "PgNotify read the change log: {Count} change(s) ready, delivered through {Position}, {Pending} waiting, {Holes} hole(s).")]
    public static partial void ChangeLogRead(ILogger logger, int count, long position, int pending, int holes);

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning,
        Message = "PgNotify has LosslessDelivery on, but a trigger on channel '{Channel}' sends whole payloads (live mode): those changes are not in the change log and are not delivered. Re-enable the table with lossless => true (InstallTriggers does it at startup).")]
    public static partial void LiveTriggerWhileLossless(ILogger logger, string channel);

    [LoggerMessage(EventId = 1020, Level = LogLevel.Warning,
        Message = "PgNotify has LosslessDelivery off, but a trigger on channel '{Channel}' writes to the change log (lossless mode): those changes are not delivered. Turn PgNotify:LosslessDelivery on, or re-enable the table with lossless => false.")]
    public static partial void LosslessTriggerWhileLive(ILogger logger, string channel);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Error,
        Message = "PgNotify failed to dispatch one notification on channel '{Channel}'; it is skipped, consumers are told of the gap, and the dispatcher goes on.")]
    public static partial void DispatchFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Error,
        Message = "PgNotify could not read oversized change {Id}; consumers are told of the gap, and health is Degraded until it can. {Fix}")]
    public static partial void LargePayloadUnreadable(ILogger logger, long id, string fix, Exception exception);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Error,
        Message = "PgNotify's {Loop} loop failed; it restarts in {DelayMs:F0} ms, and health is Unhealthy until it runs again.")]
    public static partial void LoopFailed(ILogger logger, string loop, double delayMs, Exception exception);

    [LoggerMessage(EventId = 1024, Level = LogLevel.Information, Message = "PgNotify's {Loop} loop runs again after its failure.")]
    public static partial void LoopRecovered(ILogger logger, string loop);

    [LoggerMessage(EventId = 1025, Level = LogLevel.Warning, Message = "PgNotify's setup check (InstallTriggers is off): {Problem} Health is Degraded until it is fixed; checked again on every reconnect.")]
    public static partial void SetupProblem(ILogger logger, string problem);

    [LoggerMessage(EventId = 1026, Level = LogLevel.Warning,
        Message = "PgNotify's listener still has no connection (attempt {Attempt}): {Error}; trying again in {DelayMs:F0} ms.")]
    public static partial void ConnectionStillLost(ILogger logger, int attempt, double delayMs, string error);

    [LoggerMessage(EventId = 1027, Level = LogLevel.Warning,
        Message = "PgNotify's change log reader would track more than {Max} holes (positions taken by transactions still running or rolled back); it gave up waiting for the {Count} oldest, and consumers are told of the gap.")]
    public static partial void ChangeLogHolesOverflow(ILogger logger, int max, long count);

    [LoggerMessage(EventId = 1028, Level = LogLevel.Error,
        Message = "PgNotify could not read change log position {Position}: {Reason} Consumers are told of the gap.")]
    public static partial void ChangeLogRowUnreadable(ILogger logger, long position, string reason);

    [LoggerMessage(EventId = 1014, Level = LogLevel.Trace, Message = "PgNotify is probing its listening connection on {Channel}.")]
    public static partial void Probing(ILogger logger, string channel);

    [LoggerMessage(EventId = 1050, Level = LogLevel.Warning,
        Message = "PgNotify could not begin a table snapshot (a read-only REPEATABLE READ transaction on its snapshot data source); the caller is told and may try again.")]
    public static partial void SnapshotFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1051, Level = LogLevel.Information,
        Message = "PgNotify's pooled snapshot connection had been closed by the server ({Reason}); the pool is cleared and the snapshot begins again on a new connection.")]
    public static partial void SnapshotConnectionStale(ILogger logger, string reason);
}
