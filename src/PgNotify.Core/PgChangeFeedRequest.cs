namespace PgNotify;

/// <summary>What <see cref="IPgChangeLogFeed.SubscribeAsync"/> streams: which tables, and from which position.</summary>
public sealed class PgChangeFeedRequest
{
    /// <summary>
    /// The tables whose changes to receive; <see langword="null"/> (the default) for every watched table. Replayed rows
    /// are filtered in SQL.
    /// </summary>
    public IReadOnlyCollection<PgTableName>? Tables { get; init; }

    /// <summary>
    /// The last position the consumer has (<see cref="PgChange.Position"/>): every change above it is delivered, once,
    /// in position order. Default 0: everything the change log still holds.
    /// </summary>
    public long After { get; init; }

    /// <summary>The live buffer's size while the replay runs and after; default <see cref="PgNotifyOptions.ConsumerCapacity"/>.</summary>
    public int? Capacity { get; init; }
}
