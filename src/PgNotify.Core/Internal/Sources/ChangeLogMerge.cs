namespace PgNotify.Internal;

/// <summary>
/// The pure part of the change-log reader: which positions are pending, which are holes and who may own them, and
/// what can be handed out in order. No database and no clock: the reader feeds it rows, lock holders and the time.
/// See <see cref="ChangeLogReader"/> for how holes are settled. Used by the dispatcher loop only.
/// </summary>
internal sealed class ChangeLogMerge(int batchSize, int maxHoles)
{
    private readonly SortedDictionary<long, PgChange?> _pending = [];
    private readonly List<(long From, long Through)> _skipped = [];
    private HashSet<string> _lastHolders = [];
    private long _maxSeen;

    /// <summary>Every position at or below this has been handed out or settled.</summary>
    public long DeliveredThrough { get; private set; }

    public int PendingCount => _pending.Count;

    public int HoleCount => Holes.Count;

    /// <summary>Positions not yet visible below the highest seen, each with the lock holders that may own it.</summary>
    public Dictionary<long, HashSet<string>> Holes { get; } = [];

    /// <summary>The highest position seen.</summary>
    public long MaxSeen => _maxSeen;

    /// <summary>
    /// Starts at <paramref name="deliveredThrough"/>: <paramref name="visible"/> positions above it are history (not
    /// delivered); invisible ones below the highest are holes owned by <paramref name="holders"/>.
    /// </summary>
    public void Start(long deliveredThrough, IEnumerable<long> visible, HashSet<string> holders)
    {
        DeliveredThrough = deliveredThrough;
        _maxSeen = deliveredThrough;
        foreach (var position in visible)
        {
            _pending[position] = null;
            _maxSeen = Math.Max(_maxSeen, position);
        }

        for (var position = DeliveredThrough + 1; position < _maxSeen; position++)
        {
            if (!_pending.ContainsKey(position))
            {
                Holes[position] = holders;
            }
        }

        _lastHolders = holders;
    }

    /// <summary>Takes one read's rows and lock holders; returns what can now be handed out, in order.</summary>
    public ChangeLogBatch Merge(List<(long Position, string Payload)> rows, HashSet<string> holders, long prunedThrough, DateTimeOffset now)
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

            Holes.Remove(position);
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
        foreach (var (position, owners) in Holes)
        {
            if (position <= horizon && !visible.Contains(position) && !owners.Overlaps(_lastHolders))
            {
                settled.Add(position);
            }
        }

        foreach (var position in settled)
        {
            Holes.Remove(position);
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
            if (!_pending.ContainsKey(position) && !Holes.ContainsKey(position))
            {
                Holes[position] = holders;
            }
        }

        _lastHolders = holders;

        // Bounded: past maxHoles, the oldest holes are given up (their changes, if they ever commit, are not delivered).
        if (Holes.Count > maxHoles)
        {
            foreach (var position in Holes.Keys.Order().Take(Holes.Count - maxHoles).ToList())
            {
                Holes.Remove(position);
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

            foreach (var position in Holes.Keys.Where(p => p <= prunedThrough).ToList())
            {
                Holes.Remove(position);
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
}
