namespace PgNotify.WebSockets.Internal;

/// <summary>One socket's interest in one table: which operations, and which rows.</summary>
internal sealed class Subscription(PgTableName table, IReadOnlyCollection<PgChangeOperation> operations, RowFilter? filter)
{
    private readonly int _operations = operations.Aggregate(0, (mask, op) => mask | (1 << (int)op));

    public PgTableName Table { get; } = table;

    public IReadOnlyCollection<PgChangeOperation> Operations { get; } = operations;

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

    public bool Matches(PgChange change) =>
        (_operations & (1 << (int)change.Operation)) != 0
        && (change.Position is not { } position || position > ResumedThrough)
        && (filter is null || filter.Matches(change));
}
