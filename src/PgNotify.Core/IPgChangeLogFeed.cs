namespace PgNotify;

/// <summary>
/// Lossless delivery for in-process consumers (<see cref="PgNotifyOptions.LosslessDelivery"/>): subscribe from a
/// position and receive every later change once, in position order, the replay from <c>pgnotify.change_log</c> and
/// the live changes joined without a gap or a duplicate. Registered by <c>AddPgNotifyCore</c> and <c>AddPgNotify</c>.
/// </summary>
public interface IPgChangeLogFeed
{
    /// <summary>
    /// Streams every change of <see cref="PgChangeFeedRequest.Tables"/> above <see cref="PgChangeFeedRequest.After"/>:
    /// first what the change log holds, then live changes, in position order, each once. Waits until the listener
    /// listens and has caught up. A <see cref="PgChangeGap"/> is yielded only if this consumer's buffer overflowed
    /// (<see cref="PgChangeGapReason.ConsumerOverflow"/>): resubscribe from the last position received.
    /// </summary>
    /// <param name="request">The tables and the position to start after.</param>
    /// <param name="cancellationToken">Ends the stream.</param>
    /// <returns>The changes, in position order.</returns>
    /// <exception cref="InvalidOperationException">
    /// Lossless delivery is off, or <see cref="PgChangeFeedRequest.After"/> is older than what the log still holds
    /// (pruned: see <see cref="PgNotifyOptions.ChangeLogRetention"/>); the consumer must reload its state.
    /// </exception>
    IAsyncEnumerable<PgChangeEvent> SubscribeAsync(PgChangeFeedRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// The changes of <paramref name="tables"/> (all when <see langword="null"/>) with positions in
    /// (<paramref name="after"/>, <paramref name="through"/>], in position order, read from the change log in batches.
    /// Only positions at or below <see cref="IPgNotifyStatus.DeliveredPosition"/> are settled.
    /// </summary>
    /// <param name="after">The last position the consumer has.</param>
    /// <param name="through">The last position to read.</param>
    /// <param name="tables">The tables, or <see langword="null"/> for all.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The changes, in position order.</returns>
    IAsyncEnumerable<PgChange> ReplayAsync(long after, long through, IReadOnlyCollection<PgTableName>? tables, CancellationToken cancellationToken = default);

    /// <summary>Positions at or below this may have been pruned: resuming from an older position is not possible.</summary>
    /// <param name="cancellationToken">Stops the query.</param>
    /// <returns>The highest pruned position, or 0.</returns>
    Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken = default);
}
