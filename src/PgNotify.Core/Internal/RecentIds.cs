namespace PgNotify.Internal;

/// <summary>
/// The ids seen during the last <c>window</c>, at most <c>capacity</c> of them (the oldest are forgotten first).
/// Used to refuse a second notification that references a <c>pgnotify.large_payload</c> row already delivered.
/// Single-threaded: the dispatcher's.
/// </summary>
internal sealed class RecentIds(TimeSpan window, int capacity)
{
    private readonly HashSet<long> _ids = [];
    private readonly Queue<(long Id, DateTimeOffset At)> _order = new();

    public int Count => _ids.Count;

    public bool Contains(long id, DateTimeOffset now)
    {
        Expire(now);
        return _ids.Contains(id);
    }

    public void Add(long id, DateTimeOffset now)
    {
        Expire(now);
        if (_ids.Add(id))
        {
            _order.Enqueue((id, now));
            while (_ids.Count > capacity && _order.TryDequeue(out var oldest))
            {
                _ids.Remove(oldest.Id);
            }
        }
    }

    private void Expire(DateTimeOffset now)
    {
        while (_order.TryPeek(out var oldest) && now - oldest.At > window)
        {
            _order.Dequeue();
            _ids.Remove(oldest.Id);
        }
    }
}
