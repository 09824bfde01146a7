using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PgNotify.WebSockets;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.WebSockets.Units;

/// <summary>
/// The outbox on its own, with a fake clock and a sink that records what it is given and can hold a write (as a peer
/// that stops reading does): bounds, lag, resync coalescing and the slow-consumer resync's timing, without sleeps.
/// </summary>
public sealed class OutboxTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly FakeTimeProvider _time = new();
    private readonly CancellationTokenSource _aborted = new();
    private readonly RecordingSink _sink = new();

    public void Dispose()
    {
        _aborted.Dispose();
        _services.Dispose();
    }

    [Fact]
    public async Task EnqueueChange_PastTheFrameBound_DropsAndSendsOneResyncCountingTheDropsAfterTheQueuedFrames()
    {
        var outbox = Create(capacity: 4);
        var held = _sink.Hold();
        outbox.EnqueueChange(Change(0), null); // taken by the writer, whose write now waits for the peer
        for (var i = 1; i <= 7; i++)
        {
            outbox.EnqueueChange(Change(i), null);
        }

        outbox.PendingChanges.Should().Be(4, "the queue holds at most SendQueueCapacity change frames");
        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        _sink.Frames.Should().Equal("c0", "c1", "c2", "c3", "c4", "resync slow_consumer 3");
    }

    [Fact]
    public async Task EnqueueChange_PastTheByteBound_DropsButAFrameLargerThanTheBoundStillGoesToAnEmptyQueue()
    {
        var outbox = Create(capacity: 100, maxBytes: 90);
        var held = _sink.Hold();
        outbox.EnqueueChange(Change(0, pad: 100), null); // larger than the bound, nothing queued: it goes
        outbox.EnqueueChange(Change(1, pad: 10), null);
        outbox.EnqueueChange(Change(2, pad: 10), null);
        outbox.EnqueueChange(Change(3, pad: 10), null); // over 90 bytes queued (41 each): dropped

        outbox.PendingChanges.Should().Be(2);
        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        _sink.Frames.Should().Equal("c0", "c1", "c2", "resync slow_consumer 1");
    }

    [Fact]
    public async Task EnqueueResync_WhileOneWaits_CoalescesIntoOneFrameWithTheCountsAdded()
    {
        var outbox = Create(capacity: 10);
        var held = _sink.Hold();
        outbox.EnqueueChange(Change(0), null);
        outbox.EnqueueResync(Protocol.ResyncReasons.ListenerOverflow, 2);
        outbox.EnqueueResync(Protocol.ResyncReasons.ListenerOverflow, 3);
        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        outbox.EnqueueResync(Protocol.ResyncReasons.ListenerOverflow, 4);
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        _sink.Frames.Should().Equal("c0", "resync listener_overflow 5", "resync listener_overflow 4");
    }

    [Fact]
    public async Task EnqueueResync_WithAnUnknownCountWhileOneWaits_SendsOneResyncWithoutACount()
    {
        var outbox = Create(capacity: 10);
        var held = _sink.Hold();
        outbox.EnqueueChange(Change(0), null);
        outbox.EnqueueResync(Protocol.ResyncReasons.ListenerOverflow, 2);
        outbox.EnqueueResync(Protocol.ResyncReasons.ListenerReconnected, null);
        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        _sink.Frames.Should().Equal("c0", "resync listener_reconnected -");
    }

    [Fact]
    public async Task SlowConsumer_OverflowingAgainWithinASecond_IsToldOnlyWhenTheSecondIsOver()
    {
        var outbox = Create(capacity: 2);
        await OverflowAsync(outbox, first: 0);
        _sink.Frames.Should().Equal("c0", "c1", "c2", "resync slow_consumer 1");

        await OverflowAsync(outbox, first: 10);
        _sink.Frames.Should().Equal("c0", "c1", "c2", "resync slow_consumer 1", "c10", "c11", "c12");

        var resync = _sink.WhenWritten("resync slow_consumer 1", count: 2);
        _time.Advance(Outbox.SlowConsumerResyncInterval - TimeSpan.FromMilliseconds(1));
        resync.IsCompleted.Should().BeFalse("a socket is told at most once per second");
        _sink.Frames.Should().HaveCount(7);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        await resync.WaitAsync(Timeout);
        _sink.Frames.Should().Equal("c0", "c1", "c2", "resync slow_consumer 1", "c10", "c11", "c12", "resync slow_consumer 1");
    }

    [Fact]
    public async Task WriteCoalescingDelay_ASocketThatJustWrote_WaitsForTheRoundAndSendsWhatQueuedInOneWrite()
    {
        using var deferred = new DeferredWrites(TimeSpan.FromMilliseconds(5), _time);
        var outbox = Create(capacity: 100, deferred: deferred);

        outbox.EnqueueChange(Change(1), null); // nothing written for a while: at once
        _sink.Writes.Should().Equal("c1");

        for (var i = 2; i <= 4; i++)
        {
            outbox.EnqueueChange(Change(i), null);
        }

        _sink.Writes.Should().Equal(["c1"], "the socket wrote less than the delay ago: the frames wait for the round");
        deferred.Waiting.Should().Be(1);

        var written = _sink.WhenWritten("c4", count: 1);
        _time.Advance(TimeSpan.FromMilliseconds(5));
        await written.WaitAsync(Timeout);
        _sink.Writes.Should().Equal("c1", "c2 c3 c4");

        // Quiet for longer than the delay: the next frame goes at once again.
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);
        _time.Advance(TimeSpan.FromMilliseconds(6));
        outbox.EnqueueChange(Change(5), null);
        _sink.Writes.Should().Equal("c1", "c2 c3 c4", "c5");
    }

    [Fact]
    public async Task WriteCoalescingDelay_FramesWaitingForTheRound_StillGoOutAfterTheSessionCompletes()
    {
        using var deferred = new DeferredWrites(TimeSpan.FromMilliseconds(5), _time);
        var outbox = Create(capacity: 100, deferred: deferred);
        outbox.EnqueueChange(Change(1), null);
        outbox.EnqueueChange(Change(2), null); // waits for the round
        outbox.Complete();
        var drained = outbox.WhenWrittenAsync();
        drained.IsCompleted.Should().BeFalse("c2 waits for the round");

        _time.Advance(TimeSpan.FromMilliseconds(5));
        await drained.WaitAsync(Timeout);
        _sink.Writes.Should().Equal("c1", "c2");
    }

    [Fact]
    public async Task WriteCoalescingDelay_ACloseRequestedWhileFramesWait_GoesOutAtTheRound_AheadOfThem_AsAnyClose()
    {
        using var deferred = new DeferredWrites(TimeSpan.FromMilliseconds(5), _time);
        var outbox = Create(capacity: 100, deferred: deferred);
        outbox.EnqueueChange(Change(1), null);
        outbox.EnqueueChange(Change(2), null); // waits for the round
        outbox.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "shutting down");
        _sink.Closed.Should().BeNull("the writer role is kept until the round");

        _time.Advance(TimeSpan.FromMilliseconds(5));
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);
        _sink.Closed.Should().Be(WebSocketCloseStatus.EndpointUnavailable);
        _sink.Frames.Should().Equal(["c1"], "a close goes out ahead of what is still queued (the client resumes from its position)");
    }

    [Fact]
    public void WriteCoalescingDelay_Zero_PutsNothingOff()
    {
        using var deferred = new DeferredWrites(TimeSpan.Zero, _time);
        var outbox = Create(capacity: 100, deferred: deferred);
        for (var i = 1; i <= 3; i++)
        {
            outbox.EnqueueChange(Change(i), null);
        }

        _sink.Writes.Should().Equal("c1", "c2", "c3");
        deferred.Waiting.Should().Be(0);
    }

    [Fact]
    public async Task SlowConsumer_WithTheClosePolicy_IsClosedWith1008AndNothingIsWrittenAfterTheClose()
    {
        var outbox = Create(capacity: 1, policy: PgSlowConsumerPolicy.Close);
        var held = _sink.Hold();
        outbox.EnqueueChange(Change(0), null);
        outbox.EnqueueChange(Change(1), null);
        outbox.EnqueueChange(Change(2), null); // overflows: close
        outbox.EnqueueChange(Change(3), null);
        outbox.EnqueueControl(Frames.Pong(RequestId.None), "pong");

        outbox.Closing.Should().BeTrue();
        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);

        _sink.Frames.Should().Equal("c0");
        _sink.Closed.Should().Be(WebSocketCloseStatus.PolicyViolation);
    }

    /// <summary>Holds a write, queues three changes on a two-frame queue (one dropped), and lets the writes go.</summary>
    private async Task OverflowAsync(Outbox outbox, int first)
    {
        var held = _sink.Hold();
        for (var i = first; i < first + 4; i++)
        {
            outbox.EnqueueChange(Change(i), null);
        }

        held.SetResult();
        await outbox.WhenWrittenAsync().WaitAsync(Timeout);
    }

    private Outbox Create(int capacity, int maxBytes = 1 << 20, PgSlowConsumerPolicy policy = PgSlowConsumerPolicy.Resync, DeferredWrites? deferred = null)
    {
        var options = new PgChangeWebSocketOptions { SendQueueCapacity = capacity, SendQueueMaxBytes = maxBytes, SlowConsumerPolicy = policy };
        var metrics = new WebSocketMetrics(_services.GetRequiredService<IMeterFactory>());
        var outbox = new Outbox(_sink, new Owner(options, metrics, _time, _aborted, deferred))
        {
            WriterToken = _aborted.Token,
        };
        return outbox;
    }

    private static byte[] Change(int n, int pad = 0) => Encoding.UTF8.GetBytes($"{{\"type\":\"change\",\"n\":{n},\"pad\":\"{new string('x', pad)}\"}}");

    /// <summary>The socket an outbox belongs to: aborting it cancels the test's token, as the session's abort ends its socket.</summary>
    private sealed class Owner(PgChangeWebSocketOptions options, WebSocketMetrics metrics, TimeProvider time, CancellationTokenSource aborted, DeferredWrites? deferred = null) : IOutboxOwner
    {
        public DeferredWrites? DeferredWrites => deferred;

        public string Id => "test";

        public PgChangeWebSocketOptions Options => options;

        public WebSocketMetrics Metrics => metrics;

        public TimeProvider Time => time;

        public ILogger Logger => NullLogger.Instance;

        public void Abort() => aborted.Cancel();

        public void AbortAfter(TimeSpan delay) => aborted.CancelAfter(delay);
    }

    /// <summary>Records frames as short words ("c3", "resync slow_consumer 2"); a write waits while it is held.</summary>
    private sealed class RecordingSink : IFrameSink
    {
        private readonly Lock _gate = new();
        private readonly List<string> _frames = [];
        private readonly List<string> _writes = [];
        private readonly List<(string Frame, int Count, TaskCompletionSource Done)> _waiters = [];
        private TaskCompletionSource? _held;

        public bool WritesBatches => true;

        public WebSocketCloseStatus? Closed { get; private set; }

        public IReadOnlyList<string> Frames
        {
            get
            {
                lock (_gate)
                {
                    return [.. _frames];
                }
            }
        }

        /// <summary>Each write's frames, space-separated ("c1 c2 c3": three frames in one write).</summary>
        public IReadOnlyList<string> Writes
        {
            get
            {
                lock (_gate)
                {
                    return [.. _writes];
                }
            }
        }

        /// <summary>The next write waits until the returned source is completed.</summary>
        public TaskCompletionSource Hold() => _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once <paramref name="frame"/> has been written <paramref name="count"/> times.</summary>
        public Task WhenWritten(string frame, int count)
        {
            lock (_gate)
            {
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((frame, count, done));
                Notify();
                return done.Task;
            }
        }

        public async ValueTask WriteAsync(IReadOnlyList<byte[]> frames)
        {
            lock (_gate)
            {
                var described = frames.Select(Describe).ToList();
                _frames.AddRange(described);
                _writes.Add(string.Join(' ', described));
                Notify();
            }

            if (Interlocked.Exchange(ref _held, null) is { } held)
            {
                await held.Task;
            }
        }

        public Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken)
        {
            Closed = status;
            return Task.CompletedTask;
        }

        private void Notify()
        {
            foreach (var (frame, count, done) in _waiters)
            {
                if (_frames.Count(f => f == frame) >= count)
                {
                    done.TrySetResult();
                }
            }
        }

        private static string Describe(byte[] frame)
        {
            using var json = JsonDocument.Parse(frame);
            var root = json.RootElement;
            return root.GetProperty("type").GetString() switch
            {
                "change" => $"c{root.GetProperty("n").GetInt32()}",
                "resync" => $"resync {root.GetProperty("reason").GetString()} {(root.TryGetProperty("missed", out var m) ? m.GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture) : "-")}",
                var type => type!,
            };
        }
    }
}
