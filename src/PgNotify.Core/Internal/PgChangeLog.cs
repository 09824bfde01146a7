using System.Runtime.CompilerServices;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>Queries on <c>pgnotify.change_log</c>: replay for resuming clients, the prune watermark, pruning.</summary>
internal sealed class PgChangeLog(PgNotifyConnections connections, TimeProvider time)
{
    public const int ReplayBatchSize = 1_000;

    /// <summary>Positions at or below this may have been pruned: resuming from an older position is not possible.</summary>
    public async Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken)
    {
        await using var command = connections.Side.CreateCommand("SELECT pruned_through FROM pgnotify.change_log_state WHERE id = 1");
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long value ? value : 0;
    }

    /// <summary>The changes with positions in (<paramref name="after"/>, <paramref name="through"/>], in position order.</summary>
    public async IAsyncEnumerable<PgChange> ReadAsync(long after, long through, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        while (after < through)
        {
            var batch = new List<PgChange>(ReplayBatchSize);
            var last = after;
            await using (var command = connections.Side.CreateCommand(
                "SELECT position, payload FROM pgnotify.change_log WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"))
            {
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = through });
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = ReplayBatchSize });
                await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    last = reader.GetInt64(0);
                    if (PgChangePayload.Parse(reader.GetString(1), time.GetUtcNow(), last).Change is { } change)
                    {
                        batch.Add(change);
                    }
                }
            }

            if (last == after)
            {
                yield break;
            }

            foreach (var change in batch)
            {
                yield return change;
            }

            after = last;
        }
    }

    /// <summary>
    /// Deletes old changes in small batches (never blocking writers), only below <paramref name="deliveredThrough"/>,
    /// and records the highest deleted position.
    /// </summary>
    public async Task<int> PruneAsync(long deliveredThrough, TimeSpan retention, long maxRows, CancellationToken cancellationToken)
    {
        const string sql = """
            WITH doomed AS (
                SELECT position FROM pgnotify.change_log
                WHERE position <= $1
                  AND (created_at < now() - $2 OR position <= (SELECT max(position) FROM pgnotify.change_log) - $3)
                ORDER BY position
                LIMIT 10000),
            deleted AS (
                DELETE FROM pgnotify.change_log c USING doomed d WHERE c.position = d.position RETURNING c.position),
            marked AS (
                UPDATE pgnotify.change_log_state
                SET pruned_through = greatest(pruned_through, (SELECT max(position) FROM deleted))
                WHERE id = 1 AND EXISTS (SELECT 1 FROM deleted))
            SELECT count(*)::int FROM deleted
            """;
        var total = 0;
        while (true)
        {
            await using var command = connections.Side.CreateCommand(sql);
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = deliveredThrough });
            command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = retention });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = maxRows });
            var deleted = (int)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            total += deleted;
            if (deleted < 10_000)
            {
                return total;
            }
        }
    }
}
