using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One socket's outgoing frames: a queue bounded in frames and bytes, the slow-consumer lag (drop and count, then one
/// resync), coalesced resyncs and the close. Its <see cref="OutboxWriter"/> holds the writer role. One lock (the
/// queue's monitor) guards the queue, the lag and the waiting resync; the counters are atomics read without it.
/// </summary>
internal sealed class Outbox
{
    /// <summary>A peer that does not answer our close within this time is dropped.</summary>
    public static readonly TimeSpan CloseHandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>A socket that keeps overflowing is told at most this often.</summary>
    public static readonly TimeSpan SlowConsumerResyncInterval = TimeSpan.FromSeconds(1);

    private const int MaxPendingControlFrames = 256;

    /// <summary>A queue that grew past this many frames is trimmed when it empties again.</summary>
    private const int TrimAbove = 64;

    private readonly OutboxWriter _writer;

    // A plain queue under a lock rather than a ConcurrentQueue (no 32-slot segment, ~2 KB, per idle socket), taken once
    // per frame by at most two threads; the lock is the queue's monitor, which allocates nothing until threads meet.
    private readonly Queue<Outbound> _queue = new();
    private int _queuePeak;
    private bool _lagging;
    private bool _loggedLagging;
    private long _missed;
    private bool _resyncQueued;
    private string _resyncReason = "";
    private long? _resyncMissed;
    private int _pendingChanges;
    private int _pendingControl;
    private long _pendingBytes;
    private int _closeStatus;
    private string? _closeDescription;
    private volatile bool _completing;

    /// <summary>Bounds from the owner's options; the owner is aborted when the writer fails.</summary>
    public Outbox(IFrameSink sink, IOutboxOwner owner)
    {
        Owner = owner;
        _writer = new OutboxWriter(this, sink);
    }

    /// <summary>The socket this outbox belongs to.</summary>
    public IOutboxOwner Owner { get; }

    private PgChangeWebSocketOptions Options => Owner.Options;

    private WebSocketMetrics Metrics => Owner.Metrics;

    /// <summary>Change frames queued and not yet taken by the writer.</summary>
    public int PendingChanges => Volatile.Read(ref _pendingChanges);

    /// <summary>Bytes of the change frames queued and not yet taken by the writer.</summary>
    public long PendingBytes => Interlocked.Read(ref _pendingBytes);

    /// <summary>True once a close was requested: nothing but the close is written from then on.</summary>
    public bool Closing => Volatile.Read(ref _closeStatus) != 0;

    /// <summary>The close requested, if any.</summary>
    public WebSocketCloseStatus CloseStatus => (WebSocketCloseStatus)Volatile.Read(ref _closeStatus);

    public string? CloseDescription => _closeDescription;

    /// <summary>True while changes are dropped for a socket that fell behind.</summary>
    public bool Lagging => Volatile.Read(ref _lagging);

    /// <summary>Ends the writes and the wake-ups (the session's token); set before the first frame is queued.</summary>
    public CancellationToken WriterToken
    {
        set => _writer.Token = value;
    }

    /// <summary>
    /// Queues a change frame (shared bytes) within the bounds: over them, the change is dropped and counted, and the
    /// socket gets one resync once it caught up (or is closed, with <see cref="PgSlowConsumerPolicy.Close"/>).
    /// </summary>
    /// <param name="frame">The frame.</param><param name="timestamp">The change's commit time, for the send-lag metric.</param>
    /// <param name="startWriting">False when the caller starts the writer itself after a batch (the fan-out).</param>
    /// <param name="type">The frame type for the metrics when not <c>change</c> (a snapshot's rows).</param>
    public void EnqueueChange(byte[] frame, DateTimeOffset? timestamp, bool startWriting = true, string? type = null)
    {
        if (Closing)
        {
            return;
        }

        if (Volatile.Read(ref _lagging))
        {
            lock (_queue)
            {
                if (_lagging)
                {
                    _missed++;
                    Metrics.ChangeDropped();
                    return;
                }
            }
        }

        var pendingBytes = Interlocked.Add(ref _pendingBytes, frame.Length);
        var pending = Interlocked.Increment(ref _pendingChanges);
        if (pending > Options.SendQueueCapacity || (pendingBytes > Options.SendQueueMaxBytes && pending > 1))
        {
            // Full in frames or in bytes (a frame larger than the bound still goes to a socket with nothing queued).
            Interlocked.Decrement(ref _pendingChanges);
            Interlocked.Add(ref _pendingBytes, -frame.Length);
            Overflowed();
            return;
        }

        // A batch routed at once may be large in bytes: past half the byte bound, write now rather than after the batch.
        Enqueue(new Outbound(frame, timestamp, OutboundKind.Change, type), startWriting || pendingBytes > Options.SendQueueMaxBytes / 2);
    }

    /// <summary>Queues a control frame; a socket with too many of them waiting (it does not read) is closed.</summary>
    /// <param name="frame">The frame, or null for the coalesced resync, built when it is written.</param>
    /// <param name="type">The frame type, for the metrics.</param>
    public void EnqueueControl(byte[]? frame, string type)
    {
        if (Interlocked.Increment(ref _pendingControl) > MaxPendingControlFrames)
        {
            RequestClose(WebSocketCloseStatus.PolicyViolation, "not reading responses");
            return;
        }

        Enqueue(new Outbound(frame, null, OutboundKind.Control, type));
    }

    /// <summary>
    /// Queues a resync. One resync waiting to be sent is enough: later ones add their counts to it instead of asking
    /// the client to reload twice. The frame is built when it is sent.
    /// </summary>
    public void EnqueueResync(string reason, long? missed)
    {
        lock (_queue)
        {
            _resyncReason = reason;
            _resyncMissed = missed is { } count && _resyncMissed is { } sum ? sum + count : (_resyncQueued ? null : missed);
            if (_resyncQueued)
            {
                return;
            }

            _resyncQueued = true;
        }

        EnqueueControl(null, Protocol.FrameTypes.Resync);
    }

    /// <summary>Closes the socket with <paramref name="status"/> ahead of anything still queued.</summary>
    public void RequestClose(WebSocketCloseStatus status, string description)
    {
        if (Interlocked.CompareExchange(ref _closeStatus, (int)status, 0) == 0)
        {
            _closeDescription = description;
            Enqueue(new Outbound(null, null, OutboundKind.Close));
        }
    }

    /// <summary>Nothing more is queued from now on (the session ends); what is queued still goes out.</summary>
    public void Complete() => _completing = true;

    /// <summary>True once <see cref="Complete"/> was called.</summary>
    public bool Completed => _completing;

    /// <summary>Writes what is queued, on this thread as far as the writes complete at once, unless a write is running.</summary>
    public void StartWriting() => _writer.Start();

    /// <summary>Completes when nothing is being written and nothing more will be.</summary>
    public Task WhenWrittenAsync() => _writer.WhenWrittenAsync();

    private void Overflowed()
    {
        Metrics.ChangeDropped();
        if (Options.SlowConsumerPolicy == PgSlowConsumerPolicy.Close)
        {
            SocketSession.Log.SlowConsumerClosed(Owner.Logger, Owner.Id, Options.SendQueueCapacity, Options.SendQueueMaxBytes);
            Metrics.SlowConsumerClosed();
            RequestClose(WebSocketCloseStatus.PolicyViolation, "slow consumer");
            return;
        }

        lock (_queue)
        {
            if (!_lagging && !_loggedLagging)
            {
                // Once per socket: a socket that keeps falling behind must not become a log storm.
                _loggedLagging = true;
                SocketSession.Log.SlowConsumerLagging(Owner.Logger, Owner.Id, Options.SendQueueCapacity, Options.SendQueueMaxBytes);
            }

            _lagging = true;
            _missed++;
        }
    }

    private void Enqueue(Outbound item, bool startWriting = true)
    {
        if (_completing || _writer.Done)
        {
            return;
        }

        lock (_queue)
        {
            _queue.Enqueue(item);
            _queuePeak = Math.Max(_queuePeak, _queue.Count);
        }

        if (startWriting)
        {
            StartWriting();
        }
    }

    /// <summary>Takes the next frame for the writer, and counts it out of the bounds.</summary>
    internal bool TryDequeue(out Outbound item)
    {
        lock (_queue)
        {
            if (!_queue.TryDequeue(out item))
            {
                return false;
            }
        }

        if (item.Kind == OutboundKind.Change)
        {
            Interlocked.Decrement(ref _pendingChanges);
            Interlocked.Add(ref _pendingBytes, -item.Frame!.Length);
        }
        else if (item.Kind == OutboundKind.Control)
        {
            Interlocked.Decrement(ref _pendingControl);
        }

        return true;
    }

    /// <summary>True when nothing is queued; trims the queue's buffer after a burst.</summary>
    internal bool QueueIsEmpty()
    {
        lock (_queue)
        {
            if (_queue.Count > 0)
            {
                return false;
            }

            if (_queuePeak > TrimAbove)
            {
                // A burst is over: give its buffer back rather than keep it for the socket's lifetime.
                _queue.TrimExcess();
                _queuePeak = 0;
            }

            return true;
        }
    }

    /// <summary>A coalesced resync: built when sent, with every count added to it while it waited.</summary>
    internal byte[] TakeResyncFrame()
    {
        lock (_queue)
        {
            var frame = Frames.Resync(_resyncReason, _resyncMissed);
            _resyncQueued = false;
            _resyncMissed = null;
            return frame;
        }
    }

    /// <summary>The lag is over: the count of what was dropped since it began.</summary>
    internal long TakeMissed()
    {
        lock (_queue)
        {
            var missed = _missed;
            _missed = 0;
            _lagging = false;
            return missed;
        }
    }
}
