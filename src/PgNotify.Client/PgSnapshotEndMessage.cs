namespace PgNotify.Client;

/// <summary>
/// The snapshot is complete: its rows, with every later <see cref="PgChangeMessage"/> applied in order, equal the
/// table's rows under the subscription's filter.
/// </summary>
public sealed class PgSnapshotEndMessage : PgNotifyMessage
{
    internal PgSnapshotEndMessage(string table, long count, bool truncated, IReadOnlyList<string> key, long? position)
        : base(table)
    {
        Count = count;
        Truncated = truncated;
        Key = key;
        Position = position;
    }

    /// <summary>How many rows the server sent.</summary>
    public long Count { get; }

    /// <summary>Whether rows were left out because of <see cref="PgSubscribeOptions.SnapshotLimit"/> or the server's cap.</summary>
    public bool Truncated { get; }

    /// <summary>The table's primary key columns: apply changes by them.</summary>
    public IReadOnlyList<string> Key { get; }

    /// <summary>With lossless delivery: the position the snapshot holds everything up to.</summary>
    public long? Position { get; }
}
