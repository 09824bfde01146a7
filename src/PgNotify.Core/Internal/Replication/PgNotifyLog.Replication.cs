using Microsoft.Extensions.Logging;

namespace PgNotify.Internal;

/// <summary>The replication source's log lines (event ids 1210-1219; 1201 is the feed's consumer overflow), part of <see cref="PgNotifyLog"/>.</summary>
internal static partial class PgNotifyLog
{
    [LoggerMessage(EventId = 1210, Level = LogLevel.Information,
        Message = "PgNotify streams changes from replication slot '{Slot}' (publication '{Publication}'), from LSN {Lsn}.")]
    public static partial void ReplicationStreaming(ILogger logger, string slot, string publication, string lsn);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Warning,
        Message = "PgNotify's replication connection failed (attempt {Attempt}); connecting again in {DelayMs:F0} ms. Nothing is lost: the slot keeps every change not yet delivered.")]
    public static partial void ReplicationLost(ILogger logger, int attempt, double delayMs, Exception exception);

    [LoggerMessage(EventId = 1212, Level = LogLevel.Error,
        Message = "PgNotify could not convert a replicated change (commit LSN {Lsn}); consumers are told of the gap.")]
    public static partial void ReplicationChangeFailed(ILogger logger, string lsn, Exception exception);

    [LoggerMessage(EventId = 1213, Level = LogLevel.Information, Message = "PgNotify created replication slot '{Slot}'.")]
    public static partial void ReplicationSlotCreated(ILogger logger, string slot);

    [LoggerMessage(EventId = 1214, Level = LogLevel.Warning,
        Message = "PgNotify dropped replication slot '{Slot}': unused for longer than PgNotify:ReplicationSlotIdleTimeout ({Idle}).")]
    public static partial void ReplicationSlotDropped(ILogger logger, string slot, TimeSpan idle);

    [LoggerMessage(EventId = 1215, Level = LogLevel.Warning, Message = "PgNotify could not check its replication slots; it tries again later.")]
    public static partial void ReplicationSlotCheckFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1216, Level = LogLevel.Information, Message = "PgNotify added {Tables} to publication '{Publication}'.")]
    public static partial void PublicationTablesAdded(ILogger logger, string publication, string tables);

    [LoggerMessage(EventId = 1217, Level = LogLevel.Information,
        Message = "PgNotify set REPLICA IDENTITY FULL on {Table}, so UPDATE and DELETE carry the whole old row (more WAL per UPDATE and DELETE).")]
    public static partial void ReplicaIdentitySet(ILogger logger, PgTableName table);

    [LoggerMessage(EventId = 1218, Level = LogLevel.Warning,
        Message = "PgNotify received {Count} unchanged TOASTed value(s) it could not fill in (the table's replica identity is not FULL); they are null in the row. Set REPLICA IDENTITY FULL.")]
    public static partial void ToastValuesUnfilled(ILogger logger, long count);

    [LoggerMessage(EventId = 1219, Level = LogLevel.Information,
        Message = "PgNotify removes the excluded columns of {Tables} in the app: with REPLICA IDENTITY FULL, PostgreSQL 15 cannot leave them out of the publication, so they travel over the replication connection to PgNotify (never further).")]
    public static partial void ExcludedColumnsStrippedInApp(ILogger logger, string tables);
}
