using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Subscribing from a position: joins the replay from the change log and the live feed. The live subscription is taken
/// first; the replay then reads through the delivered position; the first live change above it that does not follow
/// on directly makes the replay read the positions in between (the reader hands changes out in position order, so
/// every position below a delivered one is settled). The replay reads from <see cref="IChangeHistory"/>: the change log,
/// or the replication source's in-memory history. Runs on the consumer's task.
/// </summary>
internal sealed class PgChangeLogFeed(IOptions<PgNotifyOptions> options, PgChangeFeed feed, IChangeHistory changeLog, IPgNotifyStatus status) : IPgChangeLogFeed
{
    public Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken = default) => changeLog.GetPrunedThroughAsync(cancellationToken);

    public IAsyncEnumerable<PgChange> ReplayAsync(long after, long through, IReadOnlyCollection<PgTableName>? tables, CancellationToken cancellationToken = default) =>
        changeLog.ReadAsync(after, through, tables, cancellationToken);

    public IAsyncEnumerable<PgChangeEvent> SubscribeAsync(PgChangeFeedRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegative(request.After);
        if (!options.Value.LosslessDelivery)
        {
            throw new InvalidOperationException("Subscribing from a position needs PgNotify:LosslessDelivery = true.");
        }

        return StreamAsync(request, cancellationToken);
    }

    private async IAsyncEnumerable<PgChangeEvent> StreamAsync(PgChangeFeedRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var live = feed.Subscribe("change-log-feed", request.Capacity);
        await status.WaitUntilListeningAsync(cancellationToken).ConfigureAwait(false);
        await status.WaitUntilCaughtUpAsync(cancellationToken).ConfigureAwait(false);
        var prunedThrough = await changeLog.GetPrunedThroughAsync(cancellationToken).ConfigureAwait(false);
        if (request.After < prunedThrough)
        {
            throw new InvalidOperationException(
                $"Position {request.After} is older than what the change log still holds (pruned through {prunedThrough}): reload the state, then subscribe from its position.");
        }

        var tables = request.Tables;
        var through = status.DeliveredPosition; // settled: read only now, after the live subscription was taken
        await foreach (var change in changeLog.ReadAsync(request.After, through, tables, cancellationToken).ConfigureAwait(false))
        {
            yield return change;
        }

        var last = Math.Max(request.After, through);
        await foreach (var item in live.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (item is not PgChange { Position: { } position } change)
            {
                yield return item; // this consumer's overflow: it resubscribes from its last position
                continue;
            }

            if (position <= last)
            {
                continue; // replayed already
            }

            if (position > last + 1)
            {
                // Published before the live subscription saw it, or filtered out: the log holds what lies between.
                await foreach (var missed in changeLog.ReadAsync(last, position - 1, tables, cancellationToken).ConfigureAwait(false))
                {
                    yield return missed;
                }
            }

            last = position;
            if (tables is null || tables.Contains(change.Table))
            {
                yield return change;
            }
        }
    }
}
