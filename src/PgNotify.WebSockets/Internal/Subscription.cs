namespace PgNotify.WebSockets.Internal;

/// <summary>One socket's interest in one table: which operations, and which rows.</summary>
internal sealed class Subscription(PgTableName table, IReadOnlyCollection<PgChangeOperation> operations, RowFilter? filter)
{
    private readonly int _operations = operations.Aggregate(0, (mask, op) => mask | (1 << (int)op));

    public PgTableName Table { get; } = table;

    public IReadOnlyCollection<PgChangeOperation> Operations { get; } = operations;

    /// <summary>The row filter, if any.</summary>
    public RowFilter? Filter { get; } = filter;

    private PgSnapshotVisibility? _snapshot;

    /// <summary>
    /// The snapshot whose rows the client was sent for this table, once they were: live changes it includes are already
    /// in those rows and are not sent again. Set by the socket's request handling, read by the fan-out.
    /// </summary>
    public PgSnapshotVisibility? Snapshot
    {
        get => Volatile.Read(ref _snapshot);
        set => Volatile.Write(ref _snapshot, value);
    }

    /// <summary>True when the change is already in the snapshot rows the client got for this table.</summary>
    public bool InSnapshot(PgChange change) => Snapshot is { } snapshot && snapshot.Includes(change.TransactionId);

    private long _resumedThrough;

    /// <summary>
    /// After a resume, the position through which the client got this table's changes from the replay: live changes
    /// at or below it are skipped (the router may still be routing changes the replay already sent).
    /// </summary>
    public long ResumedThrough
    {
        get => Volatile.Read(ref _resumedThrough);
        set => Volatile.Write(ref _resumedThrough, value);
    }

    /// <summary>
    /// True when a resume already sent the change (at or below <see cref="ResumedThrough"/>). The fan-out asks again
    /// after trying to hold the change: the replay may have ended between <see cref="Matches"/> and the hold.
    /// </summary>
    public bool Resumed(PgChange change) => change.Position is { } position && position <= ResumedThrough;

    public bool Matches(PgChange change) =>
        (_operations & (1 << (int)change.Operation)) != 0
        && !Resumed(change)
        && (Filter is null || Filter.Matches(change));
}
