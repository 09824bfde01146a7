using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace PgNotify;

/// <summary>One consumer's view of the change stream, from <see cref="IPgChangeFeed.Subscribe"/>.</summary>
public sealed class PgChangeSubscription : IDisposable
{
    private readonly Channel<PgChangeEvent> _channel;
    private readonly Action<PgChangeSubscription> _onDispose;
    private long _pendingGap;
    private long _dropped;
    private int _disposed;

    internal PgChangeSubscription(string name, int capacity, Action<PgChangeSubscription> onDispose)
    {
        Name = name;
        _onDispose = onDispose;
        _channel = Channel.CreateBounded<PgChangeEvent>(new BoundedChannelOptions(capacity)
        {
            SingleWriter = true,
            SingleReader = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    /// <summary>The name given at subscription, for logs and metrics.</summary>
    public string Name { get; }

    /// <summary>The changes and gaps, in the order the listener received them.</summary>
    public ChannelReader<PgChangeEvent> Reader => _channel.Reader;

    /// <summary>How many changes were dropped for this subscriber because its buffer was full.</summary>
    public long DroppedCount => Interlocked.Read(ref _dropped);

    /// <summary>Reads changes and gaps until <paramref name="cancellationToken"/> fires or the subscription ends.</summary>
    /// <param name="cancellationToken">Stops the enumeration.</param>
    /// <returns>The changes and gaps, in order.</returns>
    public async IAsyncEnumerable<PgChangeEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await _channel.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (_channel.Reader.TryRead(out var item))
            {
                yield return item;
            }
        }
    }

    /// <summary>Stops receiving changes and completes the reader.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _channel.Writer.TryComplete();
            _onDispose(this);
        }
    }

    /// <summary>Offers an event without ever waiting. Called by the single dispatcher thread only.</summary>
    /// <returns><see langword="false"/> when the event was dropped because the buffer is full.</returns>
    internal bool Offer(PgChangeEvent item, TimeProvider time)
    {
        // A gap still owed goes first; while it cannot be written, nothing after it can be either.
        if (FlushPendingGap(time))
        {
            return Drop(item);
        }

        return _channel.Writer.TryWrite(item) || Drop(item);
    }

    internal void Complete() => _channel.Writer.TryComplete();

    /// <summary>
    /// Offers the gap still owed to this subscriber (changes dropped while its buffer was full), so it is reported even
    /// when no further change comes to carry it. Called by the single dispatcher thread only.
    /// </summary>
    /// <returns><see langword="true"/> when a gap is still owed (the buffer is still full).</returns>
    internal bool FlushPendingGap(TimeProvider time)
    {
        if (_pendingGap == 0)
        {
            return false;
        }

        if (_channel.Writer.TryWrite(new PgChangeGap(PgChangeGapReason.ConsumerOverflow, _pendingGap, time.GetUtcNow())))
        {
            _pendingGap = 0;
            return false;
        }

        return true;
    }

    private bool Drop(PgChangeEvent item)
    {
        if (item is PgChange)
        {
            _pendingGap++;
            Interlocked.Increment(ref _dropped);
        }
        else if (_pendingGap == 0)
        {
            // A gap that could not be delivered still has to be reported: count it as one unknown loss.
            _pendingGap = 1;
        }

        return false;
    }
}
