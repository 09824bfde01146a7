using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The writer role of an <see cref="Outbox"/>. There is no writer task waiting per socket: whoever queues a frame on an
/// idle socket writes it at once on its own thread (usually the fan-out, whose write into the connection completes
/// without waiting), and only a write that has to wait for the peer continues on the thread pool. Frames that queued up
/// meanwhile go out together, in one write. Only one write runs at a time (<see cref="_writing"/>); no lock.
/// </summary>
internal sealed class OutboxWriter(Outbox outbox, IFrameSink sink, WebSocketMetrics metrics, TimeProvider time, ILogger logger, string id, CancellationTokenSource aborted)
{
    /// <summary>At most this many bytes of frames in one write.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    private readonly List<Outbound> _batch = [];
    private readonly List<byte[]> _batchFrames = [];
    private long _lastSlowConsumerResync;
    private int _resyncWakeSet;
    private int _writing;
    private Task _writeTask = Task.CompletedTask;
    private volatile bool _done;

    /// <summary>Ends the writes and the wake-ups (the session's token).</summary>
    public CancellationToken Token { get; set; }

    /// <summary>True once the writer wrote the close or failed: nothing more is written.</summary>
    public bool Done => _done;

    public void Start()
    {
        if (Interlocked.CompareExchange(ref _writing, 1, 0) == 0)
        {
            Volatile.Write(ref _writeTask, WriteQueuedAsync());
        }
    }

    public async Task WhenWrittenAsync()
    {
        while (true)
        {
            await Volatile.Read(ref _writeTask).ConfigureAwait(false);
            if (Volatile.Read(ref _writing) == 0 || _done)
            {
                return;
            }

            // A write started but its task is not published yet.
            await Task.Delay(1, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Writes until the queue is empty.</summary>
    private async Task WriteQueuedAsync()
    {
        var onCallersThread = true;
        try
        {
            while (true)
            {
                var close = false;
                var bytes = 0;
                while (outbox.TryDequeue(out var item))
                {
                    if (item.Kind == OutboundKind.Close || outbox.Closing)
                    {
                        // The close goes out ahead of anything still queued (but after what was taken before it).
                        close = true;
                        break;
                    }

                    var frame = item.Frame ?? outbox.TakeResyncFrame();
                    _batch.Add(item with { Frame = frame });
                    bytes += frame.Length;
                    if (!sink.WritesBatches || bytes >= MaxBatchBytes)
                    {
                        break;
                    }
                }

                if (_batch.Count == 0 && !close && SlowConsumerResyncDue())
                {
                    // The queue is empty: a socket that overflowed gets its one resync now, after everything before the loss.
                    var missed = outbox.TakeMissed();
                    _lastSlowConsumerResync = time.GetTimestamp();
                    _batch.Add(new Outbound(Frames.Resync(Protocol.ResyncReasons.SlowConsumer, missed), null, OutboundKind.Control, Protocol.FrameTypes.Resync));
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
                    _done = true; // keeps the writer role for good: nothing is written after the close
                    await sink.CloseAsync(outbox.CloseStatus, outbox.CloseDescription, Token).ConfigureAwait(false);

                    // The receive loop waits for the client's close, but not forever.
                    aborted.CancelAfter(Outbox.CloseHandshakeTimeout);
                    return;
                }

                if (!outbox.QueueIsEmpty() || SlowConsumerResyncDue())
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
                if ((outbox.QueueIsEmpty() && !SlowConsumerResyncDue()) || Interlocked.CompareExchange(ref _writing, 1, 0) != 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or ConnectionAbortedException)
        {
            // The peer is gone or the socket was aborted: the receive loop ends the session.
            await StopAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket stops (the receive loop ends the session), the others are unaffected, and the
            // writer's task never faults, so that whoever started it on its own thread (the fan-out) is not hit.
            SocketSession.Log.UnexpectedError(logger, id, ex);
            await StopAsync().ConfigureAwait(false);
        }
    }

    private async Task StopAsync()
    {
        _done = true;
        _batch.Clear();
        _batchFrames.Clear();
        await aborted.CancelAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// True when the socket overflowed and may be told now. A socket that keeps falling behind is told at most once per
    /// <see cref="Outbox.SlowConsumerResyncInterval"/>: until then it keeps missing changes (counted in the resync it
    /// gets), rather than being asked to reload many times a second. When it is too early, a wake-up is set for the time.
    /// </summary>
    private bool SlowConsumerResyncDue()
    {
        if (!outbox.Lagging)
        {
            return false;
        }

        if (_lastSlowConsumerResync == 0)
        {
            return true;
        }

        var since = time.GetElapsedTime(_lastSlowConsumerResync);
        if (since >= Outbox.SlowConsumerResyncInterval)
        {
            return true;
        }

        if (Interlocked.Exchange(ref _resyncWakeSet, 1) == 0)
        {
            _ = WakeForResyncAsync(Outbox.SlowConsumerResyncInterval - since);
        }

        return false;
    }

    private async Task WakeForResyncAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, time, Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the session ended
        }

        Volatile.Write(ref _resyncWakeSet, 0);
        Start();
    }

    private ValueTask WriteBatchAsync()
    {
        foreach (var item in _batch)
        {
            _batchFrames.Add(item.Frame!);
        }

        var write = sink.WriteAsync(_batchFrames);
        if (write.IsCompletedSuccessfully)
        {
            _batchFrames.Clear();
            return ValueTask.CompletedTask;
        }

        return AwaitWriteAsync(write);
    }

    private async ValueTask AwaitWriteAsync(ValueTask write)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        finally
        {
            _batchFrames.Clear();
        }
    }

    private void RecordSent()
    {
        metrics.Written();
        var now = time.GetUtcNow();
        foreach (var item in _batch)
        {
            metrics.FrameSent(item.Type ?? Protocol.FrameTypes.Change, item.Frame!.Length);
            if (item.Timestamp is { } ts)
            {
                metrics.SendLag(now - ts);
            }
        }

        _batch.Clear();
    }
}
