using Microsoft.Extensions.Options;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The one seam through which a socket session reaches Core (its public API only): whether delivery is lossless, whether the listener is
/// listening (and caught up), and the change log a resume replays from. The router routes; it does not pass these on.
/// </summary>
internal sealed class ChangeSource(IPgChangeLogFeed changeLog, IPgNotifyStatus listener, IPgTableSnapshots snapshots, IOptions<PgNotifyOptions> options)
{
    /// <summary>True with <see cref="PgNotifyOptions.LosslessDelivery"/>: changes carry positions and can be resumed.</summary>
    public bool Lossless { get; } = options.Value.LosslessDelivery;

    public Task WaitUntilListeningAsync(CancellationToken cancellationToken) => listener.WaitUntilListeningAsync(cancellationToken);

    public Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken) => listener.WaitUntilCaughtUpAsync(cancellationToken);

    /// <summary>The position through which the change log was pruned: a resume from below it cannot be replayed.</summary>
    public Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken) => changeLog.GetPrunedThroughAsync(cancellationToken);

    /// <summary>The logged changes of <paramref name="tables"/> above <paramref name="after"/> through <paramref name="through"/>.</summary>
    public IAsyncEnumerable<PgChange> ReadAsync(long after, long through, IReadOnlyCollection<PgTableName> tables, CancellationToken cancellationToken) =>
        changeLog.ReplayAsync(after, through, tables, cancellationToken);

    /// <summary>Opens a snapshot of the database (waits for one of Core's <c>MaxConcurrentSnapshots</c> slots).</summary>
    public Task<PgTableSnapshot> BeginSnapshotAsync(CancellationToken cancellationToken) => snapshots.BeginAsync(cancellationToken);
}
