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
    private readonly SortedDictionary<long, PgChange?> _pending = [];
    private readonly Dictionary<long, HashSet<string>> _holes = [];
    private HashSet<string> _lastHolders = [];
    private readonly List<(long From, long Through)> _skipped = [];
    private long _maxSeen;
    private bool _started;
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Every position at or below this has been handed out or settled.</summary>
    public long DeliveredThrough { get; private set; }

    public int PendingCount => _pending.Count;

    /// <summary>The highest position visible when the reader started: rows up to it were history, not delivered live.</summary>
    public long StartupThrough { get; private set; }

    /// <summary>Whether everything up to <see cref="StartupThrough"/> is settled, so the log below the delivered position is complete.</summary>
    public bool CaughtUp => _started && DeliveredThrough >= StartupThrough;

    public int HoleCount => _holes.Count;

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
        var readNew = _pending.Count < maxPending;
        await using (var command = new NpgsqlCommand(
            """
            SELECT position, payload, (SELECT pruned_through FROM pgnotify.change_log_state WHERE id = 1)
            FROM pgnotify.change_log
            WHERE position = ANY($1) OR ($3 AND position > $2)
            ORDER BY position
            LIMIT $4
            """, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. _holes.Keys] });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = _maxSeen });
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
        var holders = _holes.Count > 0 || rows.Count > 0 ? await ReadHoldersAsync(connection, cancellationToken).ConfigureAwait(false) : [];
        return Merge(rows, holders, prunedThrough, now);
    }

    private ChangeLogBatch Merge(List<(long Position, string Payload)> rows, HashSet<string> holders, long prunedThrough, DateTimeOffset now)
    {
        var truncated = rows.Count == batchSize;
        var previousMaxSeen = _maxSeen;
        var visible = new HashSet<long>();
        List<(long Position, string Reason)>? unreadable = null;
        foreach (var (position, payload) in rows)
        {
            visible.Add(position);
            if (position <= DeliveredThrough || _pending.ContainsKey(position))
            {
                continue;
            }

            _holes.Remove(position);
            PgChange? change;
            try
            {
                change = PgChangePayload.Parse(payload, now, position).Change;
            }
            catch (FormatException ex)
            {
                // Only PgNotify's trigger writes the log, so this is a change that cannot be delivered: skip it, keep
                // the order, and say so.
                change = null;
                (unreadable ??= []).Add((position, ex.Message));
            }

            _pending[position] = change;
            _maxSeen = Math.Max(_maxSeen, position);
        }

        // A truncated read says nothing about positions past its last row; an untruncated one saw all that is visible.
        var horizon = truncated ? rows[^1].Position : _maxSeen;

        // Settle old holes: owners (if any) have all released the log since they were recorded, and the row is still invisible.
        var settled = new List<long>();
        foreach (var (position, owners) in _holes)
        {
            if (position <= horizon && !visible.Contains(position) && !owners.Overlaps(_lastHolders))
            {
                settled.Add(position);
            }
        }

        foreach (var position in settled)
        {
            _holes.Remove(position);
            _pending[position] = null;
        }

        // New holes: positions below the highest seen that are neither pending nor already holes. A jump wider than
        // maxHoles (a huge rolled-back batch, a restarted identity) is not tracked position by position: its lower part
        // is given up as one range, so memory stays bounded whatever the positions do.
        long abandoned = 0;
        var firstNew = Math.Max(DeliveredThrough, previousMaxSeen) + 1;
        if (_maxSeen - firstNew > maxHoles)
        {
            var skipThrough = _maxSeen - 1 - maxHoles;
            _skipped.Add((firstNew, skipThrough));
            abandoned += skipThrough - firstNew + 1;
            firstNew = skipThrough + 1;
        }

        for (var position = firstNew; position < _maxSeen; position++)
        {
            if (!_pending.ContainsKey(position) && !_holes.ContainsKey(position))
            {
                _holes[position] = holders;
            }
        }

        _lastHolders = holders;

        // Bounded: past maxHoles, the oldest holes are given up (their changes, if they ever commit, are not delivered).
        if (_holes.Count > maxHoles)
        {
            foreach (var position in _holes.Keys.Order().Take(_holes.Count - maxHoles).ToList())
            {
                _holes.Remove(position);
                _pending[position] = null;
                abandoned++;
            }
        }

        PgChangeGap? gap = unreadable is null && abandoned == 0 ? null : new PgChangeGap(PgChangeGapReason.Unreadable, (unreadable?.Count ?? 0) + abandoned, now);
        var prunedPastReader = false;
        if (prunedThrough > DeliveredThrough)
        {
            prunedPastReader = true;
            // Someone pruned the log past what this reader had delivered: it cannot prove nothing was lost.
            gap = new PgChangeGap(PgChangeGapReason.Unreadable, null, now);
            foreach (var position in _pending.Keys.Where(p => p <= prunedThrough).ToList())
            {
                _pending.Remove(position);
            }

            foreach (var position in _holes.Keys.Where(p => p <= prunedThrough).ToList())
            {
                _holes.Remove(position);
            }

            _skipped.RemoveAll(r => r.Through <= prunedThrough);

            DeliveredThrough = prunedThrough;
            _maxSeen = Math.Max(_maxSeen, prunedThrough);
        }

        var ready = new List<PgChange>();
        while (true)
        {
            if (_pending.Remove(DeliveredThrough + 1, out var next))
            {
                DeliveredThrough++;
                if (next is not null)
                {
                    ready.Add(next);
                }
            }
            else if (SkipFrom(DeliveredThrough + 1) is { } skipTo)
            {
                DeliveredThrough = skipTo;
            }
            else
            {
                break;
            }
        }

        return new ChangeLogBatch(ready, gap, truncated)
        {
            Unreadable = unreadable ?? [],
            AbandonedHoles = abandoned,
            PrunedPastReader = prunedPastReader,
        };
    }

    /// <summary>Where a given-up range covering <paramref name="position"/> lets delivery jump to (not past a pending change).</summary>
    private long? SkipFrom(long position)
    {
        for (var i = 0; i < _skipped.Count; i++)
        {
            var (from, through) = _skipped[i];
            if (through < position)
            {
                _skipped.RemoveAt(i--);
                continue;
            }

            if (from <= position)
            {
                var to = _pending.Count > 0 ? Math.Min(through, _pending.Keys.First() - 1) : through;
                return to >= position ? to : null;
            }
        }

        return null;
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
        DeliveredThrough = Math.Max(0, max - startupWindow);
        _maxSeen = DeliveredThrough;
        await using (var command = new NpgsqlCommand("SELECT position FROM pgnotify.change_log WHERE position > $1 AND position <= $2", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = DeliveredThrough });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = max });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var position = reader.GetInt64(0);
                _pending[position] = null;
                _maxSeen = Math.Max(_maxSeen, position);
            }
        }

        // Positions in that window that are not visible are holes like any other: settled once their owners are gone.
        var holders = await ReadHoldersAsync(connection, cancellationToken).ConfigureAwait(false);
        for (var position = DeliveredThrough + 1; position < _maxSeen; position++)
        {
            if (!_pending.ContainsKey(position))
            {
                _holes[position] = holders;
            }
        }

        _lastHolders = holders;
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
