using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// Reads <c>pgnotify.change_log</c> and hands out changes strictly in position order, exactly once, without ever
/// skipping a position that a still-running transaction may commit later.
/// </summary>
/// <remarks>
/// <para>
/// The trap: positions are taken when a row is written, not when its transaction commits, so position 10 may become
/// visible after position 11. A position missing below the highest one seen is a <em>hole</em>: its transaction is
/// still running, or it rolled back. Changes above a hole wait until the hole is filled or settled.
/// </para>
/// <para>
/// Settling a hole: any transaction that has written to the log holds a RowExclusiveLock on it until it ends. After
/// each snapshot the reader records the lock holders (<c>pg_locks</c>, by virtual transaction id). A hole first seen
/// with snapshot S(k) is owned, if its transaction still runs, by one of the holders recorded right after S(k). If a
/// later read of the holders, taken before snapshot S(j), contains none of them, the owner had ended before S(j); if
/// the position is still invisible in S(j), it rolled back and the hole is settled. Unrelated long transactions do
/// not hold anything up; a long transaction that writes to a watched table holds up the changes after it.
/// </para>
/// </remarks>
internal sealed class ChangeLogReader(int batchSize = 5_000, int maxPending = 100_000, int startupWindow = 1_000, int maxHoles = 100_000)
{
    private readonly ChangeLogMerge _merge = new(batchSize, maxHoles);
    private bool _started;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Every position at or below this has been handed out or settled.</summary>
    public long DeliveredThrough => _merge.DeliveredThrough;

    public int PendingCount => _merge.PendingCount;

    /// <summary>The highest position visible when the reader started: rows up to it were history, not delivered live.</summary>
    public long StartupThrough { get; private set; }

    /// <summary>Whether everything up to <see cref="StartupThrough"/> is settled, so the log below the delivered position is complete.</summary>
    public bool CaughtUp => _started && DeliveredThrough >= StartupThrough;

    public int HoleCount => _merge.HoleCount;

    /// <summary>Reads what is new and returns the changes that can now be handed out, in order; a gap when the log was pruned past us.</summary>
    public async Task<ChangeLogBatch> ReadAsync(NpgsqlDataSource dataSource, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            if (!_started)
            {
                await StartAsync(connection, cancellationToken).ConfigureAwait(false);
            }

            return await ReadCoreAsync(connection, now, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Fixes the reader's starting point once: every change committed after this returns is delivered. The listener
    /// calls it before it first reports that it is listening.
    /// </summary>
    public async Task EnsureStartedAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_started)
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await StartAsync(connection, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ChangeLogBatch> ReadCoreAsync(NpgsqlConnection connection, DateTimeOffset now, CancellationToken cancellationToken)
    {

        long prunedThrough;
        var rows = new List<(long Position, string Payload)>();
        var readNew = _merge.PendingCount < maxPending;
        await using (var command = new NpgsqlCommand(
            """
            SELECT position, payload, (SELECT pruned_through FROM pgnotify.change_log_state WHERE id = 1)
            FROM pgnotify.change_log
            WHERE position = ANY($1) OR ($3 AND position > $2)
            ORDER BY position
            LIMIT $4
            """, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. _merge.Holes.Keys] });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _merge.MaxSeen });
            command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = readNew });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = batchSize });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            prunedThrough = -1;
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rows.Add((reader.GetInt64(0), reader.GetString(1)));
                prunedThrough = reader.GetInt64(2);
            }
        }

        // Holders right after this snapshot: the candidates for owning any hole first seen in it.
        var holders = _merge.HoleCount > 0 || rows.Count > 0 ? await ReadHoldersAsync(connection, cancellationToken).ConfigureAwait(false) : [];
        return _merge.Merge(rows, holders, prunedThrough, now);
    }

    private async Task StartAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        // Start from "now", but look back a little: a transaction still running may hold a position below the highest
        // visible one, and must not be skipped when it commits. Rows already visible there are history: not delivered.
        long max;
        await using (var command = new NpgsqlCommand("SELECT coalesce(max(position), 0) FROM pgnotify.change_log", connection))
        {
            max = (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }

        StartupThrough = max;
        var from = Math.Max(0, max - startupWindow);
        var visible = new List<long>();
        await using (var command = new NpgsqlCommand("SELECT position FROM pgnotify.change_log WHERE position > $1 AND position <= $2", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = from });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = max });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                visible.Add(reader.GetInt64(0));
            }
        }

        // Positions in that window that are not visible are holes like any other: settled once their owners are gone.
        _merge.Start(from, visible, await ReadHoldersAsync(connection, cancellationToken).ConfigureAwait(false));
        _started = true;
    }

    private static async Task<HashSet<string>> ReadHoldersAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var holders = new HashSet<string>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand(
            """
            SELECT virtualtransaction FROM pg_locks
            WHERE locktype = 'relation' AND relation = 'pgnotify.change_log'::regclass
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND mode = 'RowExclusiveLock'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            holders.Add(reader.GetString(0));
        }

        return holders;
    }
}

/// <summary>What one read of the change log yields.</summary>
internal sealed record ChangeLogBatch(IReadOnlyList<PgChange> Changes, PgChangeGap? Gap, bool MoreAvailable)
{
    /// <summary>Log rows that could not be parsed (position, why): each is a change lost, reported in <see cref="Gap"/>.</summary>
    public IReadOnlyList<(long Position, string Reason)> Unreadable { get; init; } = [];

    /// <summary>Holes given up because there were more than the reader tracks; reported in <see cref="Gap"/>.</summary>
    public long AbandonedHoles { get; init; }

    /// <summary>Whether <see cref="Gap"/> is there because the log was pruned past the reader.</summary>
    public bool PrunedPastReader { get; init; }
}
