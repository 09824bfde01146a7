namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The frames an <see cref="OutboxWriter"/> takes for one write. A socket holds one only while it holds the writer role,
/// then gives it back to a small shared pool, so an idle socket holds none and a busy one allocates none. The pool is a
/// few slots taken and given back with atomic exchanges; no lock.
/// </summary>
internal sealed class WriteBatch
{
    /// <summary>A batch that grew past this many frames is not pooled, so the pool never keeps a burst's arrays.</summary>
    private const int MaxPooledCapacity = 256;

    private static readonly WriteBatch?[] Pool = new WriteBatch?[Math.Max(4, Environment.ProcessorCount * 2)];

    /// <summary>The frames taken from the queue, with their kinds and timestamps (for the metrics).</summary>
    public List<Outbound> Items { get; } = [];

    /// <summary>The same frames' bytes, as the sink writes them.</summary>
    public List<byte[]> Frames { get; } = [];

    public static WriteBatch Rent()
    {
        for (var i = 0; i < Pool.Length; i++)
        {
            if (Interlocked.Exchange(ref Pool[i], null) is { } batch)
            {
                return batch;
            }
        }

        return new WriteBatch();
    }

    public static void Return(WriteBatch batch)
    {
        if (batch.Items.Capacity > MaxPooledCapacity || batch.Frames.Capacity > MaxPooledCapacity)
        {
            return;
        }

        batch.Items.Clear();
        batch.Frames.Clear();
        for (var i = 0; i < Pool.Length; i++)
        {
            if (Interlocked.CompareExchange(ref Pool[i], batch, null) is null)
            {
                return;
            }
        }
    }
}
