namespace PgNotify.Internal;

/// <summary>
/// Where a replay reads from: the changes with positions in a range, and the position below which they are gone.
/// <see cref="PgChangeLog"/> reads <c>pgnotify.change_log</c> (the trigger source with lossless delivery);
/// <see cref="ReplicationHistory"/> is the replication source's bounded in-memory history. Chosen at registration.
/// </summary>
internal interface IChangeHistory
{
    /// <summary>Positions at or below this are no longer held: resuming from an older position is not possible.</summary>
    Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The changes of <paramref name="tables"/> (all tables when <see langword="null"/>) with positions in
    /// (<paramref name="after"/>, <paramref name="through"/>], in position order.
    /// </summary>
    IAsyncEnumerable<PgChange> ReadAsync(long after, long through, IReadOnlyCollection<PgTableName>? tables, CancellationToken cancellationToken);
}
