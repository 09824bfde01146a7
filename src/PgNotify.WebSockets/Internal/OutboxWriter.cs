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
internal sealed class OutboxWriter(Outbox outbox, IFrameSink sink)
{
    /// <summary>At most this many bytes of frames in one write.</summary>
    private const int MaxBatchBytes = 64 * 1024;

    /// <summary>Rented while this writer holds the writer role (see <see cref="WriteBatch"/>), null otherwise.</summary>
    private WriteBatch? _held;
    private long _lastSlowConsumerResync;
    private long _lastWrite;
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

    /// <summary>Goes on writing at a write round of <see cref="DeferredWrites"/> (the writer role was kept meanwhile).</summary>
    public void ResumeDeferred() => Volatile.Write(ref _writeTask, WriteQueuedAsync(resumed: true));

    /// <summary>Writes until the queue is empty.</summary>
    /// <param name="resumed">True at a write round: the write goes out now even if the last one was recent.</param>
    private async Task WriteQueuedAsync(bool resumed = false)
    {
        var onCallersThread = true;
        try
        {
            while (true)
            {
                if (!resumed && outbox.Owner.DeferredWrites is { } deferred && deferred.TooSoon(_lastWrite) && !outbox.Closing)
                {
                    // WriteCoalescingDelay: this socket wrote a moment ago. The writer role is kept, so frames queued
                    // meanwhile wait (nobody else starts a write) and go out together at the next round.
                    GiveBackBatch();
                    deferred.Add(this);
                    return;
                }

                resumed = false;
                _held ??= WriteBatch.Rent();
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
                    Held.Items.Add(item with { Frame = frame });
                    bytes += frame.Length;
                    if (!sink.WritesBatches || bytes >= MaxBatchBytes)
                    {
                        break;
                    }
                }

                if (Held.Items.Count == 0 && !close && SlowConsumerResyncDue())
                {
                    // The queue is empty: a socket that overflowed gets its one resync now, after everything before the loss.
                    var missed = outbox.TakeMissed();
                    _lastSlowConsumerResync = outbox.Owner.Time.GetTimestamp();
                    Held.Items.Add(new Outbound(Frames.Resync(Protocol.ResyncReasons.SlowConsumer, missed), null, OutboundKind.Control, Protocol.FrameTypes.Resync));
                }

                if (Held.Items.Count > 0)
                {
                    if (outbox.Owner.DeferredWrites is { Enabled: true } rounds)
                    {
                        _lastWrite = rounds.Time.GetTimestamp();
                    }

                    var write = WriteBatchAsync();
                    onCallersThread &= write.IsCompleted;
                    await write.ConfigureAwait(false);
                    RecordSent();
                }

                if (close)
                {
                    _done = true; // keeps the writer role for good: nothing is written after the close
                    GiveBackBatch();
                    await sink.CloseAsync(outbox.CloseStatus, outbox.CloseDescription, Token).ConfigureAwait(false);

                    // The receive loop waits for the client's close, but not forever.
                    outbox.Owner.AbortAfter(Outbox.CloseHandshakeTimeout);
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

                // Let go of the writer role (the batch first: the next holder rents its own), then look again: a frame
                // queued, or a held-back resync's wake-up that fired, while we still held the role found it taken and
                // relies on us. This task, if it went asynchronous, is not kept for the idle socket's life (136 bytes):
                // WhenWrittenAsync looks at the writer role, not only at the task.
                GiveBackBatch();
                Volatile.Write(ref _writeTask, Task.CompletedTask);
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
            Stop();
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket stops (the receive loop ends the session), the others are unaffected, and the
            // writer's task never faults, so that whoever started it on its own thread (the fan-out) is not hit.
            SocketSession.Log.UnexpectedError(outbox.Owner.Logger, outbox.Owner.Id, ex);
            Stop();
        }
    }

    private void Stop()
    {
        _done = true;
        GiveBackBatch();
        outbox.Owner.Abort();
    }

    private WriteBatch Held => _held!;

    private void GiveBackBatch()
    {
        if (_held is { } batch)
        {
            _held = null;
            WriteBatch.Return(batch);
        }
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

        var since = outbox.Owner.Time.GetElapsedTime(_lastSlowConsumerResync);
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
            await Task.Delay(delay, outbox.Owner.Time, Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the session ended
        }

        Volatile.Write(ref _resyncWakeSet, 0);
        if (!outbox.Completed)
        {
            Start(); // not after the session ended: its token is the request's, which a normal end does not cancel
        }
    }

    private ValueTask WriteBatchAsync()
    {
        foreach (var item in Held.Items)
        {
            Held.Frames.Add(item.Frame!);
        }

        var write = sink.WriteAsync(Held.Frames);
        if (write.IsCompletedSuccessfully)
        {
            Held.Frames.Clear();
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
            Held.Frames.Clear();
        }
    }

    private void RecordSent()
    {
        var metrics = outbox.Owner.Metrics;
        metrics.Written();
        var now = outbox.Owner.Time.GetUtcNow();
        foreach (var item in Held.Items)
        {
            metrics.FrameSent(item.Type ?? Protocol.FrameTypes.Change, item.Frame!.Length);
            if (item.Timestamp is { } ts)
            {
                metrics.SendLag(now - ts);
            }
        }

        Held.Items.Clear();
    }
}
