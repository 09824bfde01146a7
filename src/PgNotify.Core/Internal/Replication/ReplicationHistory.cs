using System.Runtime.CompilerServices;

namespace PgNotify.Internal;

/// <summary>
/// The replication source's history for resuming clients: the last <see cref="PgNotifyOptions.ReplicationHistorySize"/>
/// changes this instance delivered, in position order, in memory (no table to write). A position older than the
/// oldest held, or than where this instance started streaming, is expired. Written by the dispatcher loop (before the
/// change reaches the feed), read by replays on consumers' tasks; one lock.
/// </summary>
internal sealed class ReplicationHistory(int capacity) : IChangeHistory
{
    private const int ReadBatch = 1_000;

    private readonly Lock _lock = new();
    private readonly PgChange[] _ring = new PgChange[Math.Max(1, capacity)];
    private int _start;
    private int _count;
    private long _prunedThrough = long.MaxValue; // nothing can be replayed until streaming starts

    /// <summary>How many changes are held.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Streaming starts at <paramref name="position"/>: changes at or below it were never held here.</summary>
    public void StartAt(long position)
    {
        lock (_lock)
        {
            if (_prunedThrough == long.MaxValue)
            {
                _prunedThrough = position;
            }
        }
    }

    /// <summary>Adds a delivered change (positions only grow); the oldest is dropped when full.</summary>
    public void Add(PgChange change)
    {
        var position = change.Position!.Value;
        lock (_lock)
        {
            if (_count > 0 && _ring[(_start + _count - 1) % _ring.Length].Position >= position)
            {
                return; // a change sent again after a reconnect: held already
            }

            if (_count == _ring.Length)
            {
                _prunedThrough = _ring[_start].Position!.Value;
                _ring[_start] = null!;
                _start = (_start + 1) % _ring.Length;
                _count--;
            }

            _ring[(_start + _count) % _ring.Length] = change;
            _count++;
        }
    }

    public Task<long> GetPrunedThroughAsync(CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            // Before streaming started nothing is held: every position is expired (reported as the highest possible).
            return Task.FromResult(_prunedThrough);
        }
    }

    public async IAsyncEnumerable<PgChange> ReadAsync(
        long after, long through, IReadOnlyCollection<PgTableName>? tables, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        while (after < through)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = Take(after, through);
            if (batch.Count == 0)
            {
                yield break;
            }

            foreach (var change in batch)
            {
                if (tables is null || tables.Contains(change.Table))
                {
                    yield return change;
                }
            }

            after = batch[^1].Position!.Value;
        }
    }

    private List<PgChange> Take(long after, long through)
    {
        lock (_lock)
        {
            // Binary search for the first change above `after`.
            int lo = 0, hi = _count;
            while (lo < hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_ring[(_start + mid) % _ring.Length].Position <= after)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            var batch = new List<PgChange>(Math.Min(ReadBatch, _count - lo));
            for (var i = lo; i < _count && batch.Count < ReadBatch; i++)
            {
                var change = _ring[(_start + i) % _ring.Length];
                if (change.Position > through)
                {
                    break;
                }

                batch.Add(change);
            }

            return batch;
        }
    }
}
