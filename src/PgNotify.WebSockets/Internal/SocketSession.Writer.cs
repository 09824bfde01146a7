using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The socket's writer. There is no writer task waiting per socket: whoever queues a frame on an idle socket writes it
/// at once on its own thread (usually the fan-out, whose write into the connection completes without waiting), and
/// only a write that has to wait for the peer continues on the thread pool. Frames that queued up meanwhile go out
/// together, in one write, when the server gave us the connection's stream.
/// </summary>
internal sealed partial class SocketSession
{
    /// <summary>At most this many bytes of frames in one write.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    /// <summary>A queue that grew past this many frames is trimmed when it empties again.</summary>
    private const int TrimAbove = 64;

    /// <summary>A socket that keeps overflowing is told at most this often.</summary>
    private static readonly TimeSpan SlowConsumerResyncInterval = TimeSpan.FromSeconds(1);

    // A plain queue under a lock rather than a ConcurrentQueue: an idle socket then holds no 32-slot segment (about
    // 2 KB per socket, docs/benchmarks.md), and the lock is taken once per frame by at most two threads.
    private readonly Queue<Outbound> _queue = new();
    private readonly Lock _queueGate = new();
    private int _queuePeak;
    private long _lastSlowConsumerResync;
    private int _resyncWakeSet;
    private readonly List<Outbound> _batch = [];
    private readonly List<byte[]> _batchFrames = [];
    private int _writing;
    private Task _writeTask = Task.CompletedTask;
    private volatile bool _writerDone;
    private volatile bool _completing;
    private CancellationToken _writerToken;

    /// <summary>Set and cleared by the fan-out thread only: this session is in its list of sessions to start.</summary>
    public bool PendingStart { get; set; }

    private void Enqueue(Outbound item, bool startWriting = true)
    {
        if (_completing || _writerDone)
        {
            return;
        }

        lock (_queueGate)
        {
            _queue.Enqueue(item);
            _queuePeak = Math.Max(_queuePeak, _queue.Count);
        }

        if (startWriting)
        {
            StartWriting();
        }
    }

    /// <summary>Writes what is queued, on this thread as far as the writes complete at once, unless a write is running.</summary>
    public void StartWriting()
    {
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            Volatile.Write(ref _writeTask, WriteQueuedAsync());
        }
    }

    /// <summary>Completes when nothing is being written and nothing more will be.</summary>
    private async Task WhenWrittenAsync()
    {
        while (true)
        {
            await Volatile.Read(ref _writeTask).ConfigureAwait(false);
            if (Volatile.Read(ref _writing) == 0 || _writerDone)
            {
                return;
            }

            // A write started but its task is not published yet.
            await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Writes until the queue is empty. Only one runs at a time per socket (<see cref="_writing"/>).</summary>
    private async Task WriteQueuedAsync()
    {
        var onCallersThread = true;
        try
        {
            while (true)
            {
                var close = false;
                var bytes = 0;
                while (TryDequeue(out var item))
                {
                    if (item.Kind == OutboundKind.Close || Volatile.Read(ref _closeStatus) != 0)
                    {
                        // The close goes out ahead of anything still queued (but after what was taken before it).
                        close = true;
                        break;
                    }

                    if (item.Kind == OutboundKind.Change)
                    {
                        Interlocked.Decrement(ref _pendingChanges);
                        Interlocked.Add(ref _pendingBytes, -item.Frame!.Length);
                    }
                    else
                    {
                        Interlocked.Decrement(ref _pendingControl);
                    }

                    var frame = item.Frame ?? TakeResyncFrame();
                    _batch.Add(item with { Frame = frame });
                    bytes += frame.Length;
                    if (_frames is null || bytes >= MaxBatchBytes)
                    {
                        break;
                    }
                }

                if (_batch.Count == 0 && !close && SlowConsumerResyncDue())
                {
                    // The queue is empty: a socket that overflowed gets its one resync now, after everything before the loss.
                    long missed;
                    lock (_lagGate)
                    {
                        missed = _missed;
                        _missed = 0;
                        _lagging = false;
                    }

                    _lastSlowConsumerResync = _time.GetTimestamp();
                    _batch.Add(new Outbound(Frames.Resync(ResyncReasons.SlowConsumer, missed), null, OutboundKind.Control, "resync"));
                }

                if (_batch.Count > 0)
                {
                    var write = WriteBatchAsync();
                    onCallersThread &= write.IsCompleted;
                    await write.ConfigureAwait(false);
                    RecordSent();
                }

                if (close)
                {
                    _writerDone = true; // keeps the writer role for good: nothing is written after the close
                    await CloseOutputAsync(_writerToken).ConfigureAwait(false);
                    return;
                }

                if (!QueueIsEmpty() || SlowConsumerResyncDue())
                {
                    if (onCallersThread)
                    {
                        // The caller (e.g. the fan-out) wrote one batch for this socket; the rest is the pool's work.
                        onCallersThread = false;
                        await Task.Yield();
                    }

                    continue;
                }

                // Let go of the writer role, then look again: a frame queued, or a held-back resync's wake-up that
                // fired, while we still held the role found it taken and relies on us.
                Volatile.Write(ref _writing, 0);
                if ((QueueIsEmpty() && !SlowConsumerResyncDue()) || Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or ConnectionAbortedException)
        {
            // The peer is gone or the socket was aborted: the receive loop ends the session.
            _writerDone = true;
            _batch.Clear();
            await _aborted.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket stops (the receive loop ends the session), the others are unaffected, and the
            // writer's task never faults, so that whoever started it on its own thread (the fan-out) is not hit.
            Log.UnexpectedError(_logger, Id, ex);
            _writerDone = true;
            _batch.Clear();
            await _aborted.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// True when the socket overflowed and may be told now. A socket that keeps falling behind is told at most once per
    /// <see cref="SlowConsumerResyncInterval"/>: until then it keeps missing changes (counted in the resync it gets),
    /// rather than being asked to reload many times a second. When it is too early, a wake-up is set for the time.
    /// </summary>
    private bool SlowConsumerResyncDue()
    {
        if (!Volatile.Read(ref _lagging))
        {
            return false;
        }

        if (_lastSlowConsumerResync == 0)
        {
            return true;
        }

        var since = _time.GetElapsedTime(_lastSlowConsumerResync);
        if (since >= SlowConsumerResyncInterval)
        {
            return true;
        }

        if (Interlocked.Exchange(ref _resyncWakeSet, 1) == 0)
        {
            _ = WakeForResyncAsync(SlowConsumerResyncInterval - since);
        }

        return false;
    }

    private async Task WakeForResyncAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _writerToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the session ended
        }

        Volatile.Write(ref _resyncWakeSet, 0);
        StartWriting();
    }

    private bool TryDequeue(out Outbound item)
    {
        lock (_queueGate)
        {
            return _queue.TryDequeue(out item);
        }
    }

    private bool QueueIsEmpty()
    {
        lock (_queueGate)
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

    private ValueTask WriteBatchAsync()
    {
        if (_frames is not null)
        {
            return WriteFramesAsync(_frames);
        }

        // One frame per batch without the connection's stream.
        // No token: a registration per send was a measurable cost (docs/benchmarks.md). A send that must stop is
        // stopped by aborting the socket, which RunAsync does when the session ends.
        return _socket.SendAsync(_batch[0].Frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
    }

    private async ValueTask WriteFramesAsync(FrameStream frames)
    {
        foreach (var item in _batch)
        {
            _batchFrames.Add(item.Frame!);
        }

        try
        {
            if (!await frames.WriteTextFramesAsync(_batchFrames).ConfigureAwait(false))
            {
                // The runtime's WebSocket closed its side itself (e.g. 1007 for invalid UTF-8 from the client).
                _batch.Clear();
                throw new WebSocketException(WebSocketError.InvalidState, "The WebSocket has sent its close frame.");
            }
        }
        finally
        {
            _batchFrames.Clear();
        }
    }

    private void RecordSent()
    {
        _metrics.Written();
        var now = _time.GetUtcNow();
        foreach (var item in _batch)
        {
            _metrics.FrameSent(item.Kind == OutboundKind.Change ? "change" : item.Type!, item.Frame!.Length);
            if (item.Timestamp is { } ts)
            {
                _metrics.SendLag(now - ts);
            }
        }

        _batch.Clear();
    }

    /// <summary>A coalesced resync: built when sent, with every count added to it while it waited.</summary>
    private byte[] TakeResyncFrame()
    {
        lock (_lagGate)
        {
            var frame = Frames.Resync(_resyncReason, _resyncMissed);
            _resyncQueued = false;
            _resyncMissed = null;
            return frame;
        }
    }
}
