using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>Queries on <c>pgnotify.change_log</c>: replay for resuming clients, the prune watermark, pruning.</summary>
internal sealed class PgChangeLog(PgNotifyConnections connections, TimeProvider time, IOptions<PgNotifyOptions>? options = null) : IChangeHistory
{
    public const int ReplayBatchSize = 1_000;

    // Replays share PgNotify's small side pool with the listener: at most this many read at once, the others wait.
    private readonly SemaphoreSlim _replaySlots = new(options?.Value.MaxConcurrentReplays ?? 2);
    private long _unreadable;

    /// <summary>Log rows a replay skipped because they could not be parsed (only PgNotify's trigger writes the log: none, normally).</summary>
    public long UnreadableCount => Interlocked.Read(ref _unreadable);

    /// <summary>How many replay reads run right now (at most <see cref="PgNotifyOptions.MaxConcurrentReplays"/>).</summary>
    public int ReplaysRunning => (options?.Value.MaxConcurrentReplays ?? 2) - _replaySlots.CurrentCount;

    /// <summary>Positions at or below this may have been pruned: resuming from an older position is not possible.</summary>
    public Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken) => StaleConnections.ReadAsync(connections.Side, async () =>
    {
        await using var command = connections.Side.CreateCommand("SELECT pruned_through FROM pgnotify.change_log_state WHERE id = 1");
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long value ? value : 0;
    }, cancellationToken);

    /// <summary>The changes with positions in (<paramref name="after"/>, <paramref name="through"/>], in position order.</summary>
    public IAsyncEnumerable<PgChange> ReadAsync(long after, long through, CancellationToken cancellationToken) =>
        ReadAsync(after, through, null, cancellationToken);

    /// <summary>
    /// The changes of <paramref name="tables"/> (all tables when <see langword="null"/>) with positions in
    /// (<paramref name="after"/>, <paramref name="through"/>], in position order. The tables are filtered in SQL, so
    /// only their rows leave the database. Each batch waits for one of
    /// <see cref="PgNotifyOptions.MaxConcurrentReplays"/> slots (until <paramref name="cancellationToken"/>).
    /// </summary>
    public async IAsyncEnumerable<PgChange> ReadAsync(
        long after, long through, IReadOnlyCollection<PgTableName>? tables, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string[]? schemas = tables?.Select(t => t.Schema).ToArray();
        string[]? names = tables?.Select(t => t.Name).ToArray();
        if (tables is { Count: 0 })
        {
            yield break;
        }

        while (after < through)
        {
            List<PgChange> batch;
            long last;
            await _replaySlots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                (batch, last) = await ReadBatchAsync(after, through, schemas, names, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _replaySlots.Release();
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

    /// <summary>One batch, read once more on a new connection if the pool's was one the server had closed (a failover).</summary>
    private Task<(List<PgChange> Batch, long Last)> ReadBatchAsync(
        long after, long through, string[]? schemas, string[]? names, CancellationToken cancellationToken) =>
        StaleConnections.ReadAsync(connections.Side, () => ReadFilteredBatchAsync(after, through, schemas, names, cancellationToken), cancellationToken);

    private async Task<(List<PgChange> Batch, long Last)> ReadFilteredBatchAsync(
        long after, long through, string[]? schemas, string[]? names, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadBatchCoreAsync(after, through, schemas, names, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (schemas is not null && ex.SqlState == PostgresErrorCodes.StatementTooComplex)
        {
            // The SQL filter parses each row's JSON, and PostgreSQL's parser recurses: a row nested near max_stack_depth
            // fails it ("stack depth limit exceeded"). Read that batch unfiltered and filter here instead.
            return await ReadBatchCoreAsync(after, through, null, null, cancellationToken, schemas, names).ConfigureAwait(false);
        }
    }

    private async Task<(List<PgChange> Batch, long Last)> ReadBatchCoreAsync(
        long after, long through, string[]? schemas, string[]? names, CancellationToken cancellationToken,
        string[]? localSchemas = null, string[]? localNames = null)
    {
        var batch = new List<PgChange>(schemas is null ? ReplayBatchSize : 16);
        var last = after;
        // The position range is scanned in batches; with tables given, only their rows are returned, but every scanned
        // position still counts towards `last` (the highest position of the batch comes back even when filtered out).
        var sql = schemas is null
            ? "SELECT position, payload FROM pgnotify.change_log WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
            : """
              SELECT b.position, CASE WHEN (p ->> 'schema', p ->> 'table') IN (SELECT * FROM unnest($4::text[], $5::text[])) THEN b.payload END
              FROM (SELECT position, payload FROM pgnotify.change_log WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3) b,
                   LATERAL (SELECT b.payload::json AS p) j
              ORDER BY b.position
              """;
        await using var command = connections.Side.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = after });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = through });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = ReplayBatchSize });
        if (schemas is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = schemas });
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = names! });
        }

        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            last = reader.GetInt64(0);
            if (reader.IsDBNull(1))
            {
                continue; // another table's change
            }

            PgChange? change;
            try
            {
                change = PgChangePayload.Parse(reader.GetString(1), time.GetUtcNow(), last).Change;
            }
            catch (FormatException)
            {
                // Only PgNotify's trigger writes the log: skip what cannot be parsed rather than fail the whole replay
                // (the live reader reports the same row as a gap, with event 1028).
                Interlocked.Increment(ref _unreadable);
                continue;
            }

            if (change is not null && (localSchemas is null || Contains(localSchemas, localNames!, change.Table)))
            {
                batch.Add(change);
            }
        }

        return (batch, last);
    }

    private static bool Contains(string[] schemas, string[] names, PgTableName table)
    {
        for (var i = 0; i < schemas.Length; i++)
        {
            if (string.Equals(schemas[i], table.Schema, StringComparison.Ordinal) && string.Equals(names[i], table.Name, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
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
