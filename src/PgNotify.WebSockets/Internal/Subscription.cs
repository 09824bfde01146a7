namespace PgNotify.WebSockets.Internal;

/// <summary>One socket's interest in one table: which operations, and which rows.</summary>
internal sealed class Subscription(PgTableName table, IReadOnlyCollection<PgChangeOperation> operations, RowFilter? filter)
{
    private readonly int _operations = operations.Aggregate(0, (mask, op) => mask | (1 << (int)op));

    public PgTableName Table { get; } = table;

    public IReadOnlyCollection<PgChangeOperation> Operations { get; } = operations;

    public bool Matches(PgChange change) =>
        (_operations & (1 << (int)change.Operation)) != 0 && (filter is null || filter.Matches(change));
}
