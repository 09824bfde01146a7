using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.WebSockets;

/// <summary>Frames that queue up for a socket leave together, in one write, and arrive whole and in order.</summary>
[Collection(HeavyCollection.Name)]
public sealed class CoalescingTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task FramesQueuedBehindASlowReader_GoOutSeveralPerWrite_WholeAndInOrder()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => { ws.SendQueueCapacity = 10_000; ws.SendQueueMaxBytes = 64 << 20; });
        using var counts = new WriteCounts(host);

        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");
        await counts.StartCountingAfterAsync(frames: 2); // welcome, subscribed

        // 4,000 rows of about 2 KB (8 MB of frames, more than the connection's buffers hold) while the client reads
        // nothing: sends start to wait, and what queues meanwhile must go out together. Row 2,000 is 70 KB (over
        // NOTIFY's limit, so it is fetched, and its frame has the 8-byte length form).
        const int rows = 4_000;
        await db.ExecuteAsync(
            $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, CASE WHEN g = 2000 THEN repeat('é', 35000) ELSE repeat('x', 2000) END " +
            $"FROM generate_series(1, {rows}) g");
        await Task.Delay(TimeSpan.FromSeconds(1));

        for (var id = 1; id <= rows; id++)
        {
            var change = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
            change.GetProperty("type").GetString().Should().Be("change");
            change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id, "frames arrive in commit order");
            change.GetProperty("data").GetProperty("body").GetString().Should().HaveLength(id == 2000 ? 35_000 : 2_000);
        }

        var (frames, writes) = counts.Since();
        frames.Should().Be(rows);
        writes.Should().BeLessThan(rows / 4, "frames that queued behind the slow reader went out several per write");
    }

    [Fact]
    public async Task WriteCoalescingDelay_ChangesCommittedOneByOne_ArriveEveryOneInOrder_InFewerWritesThanFrames()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.WriteCoalescingDelay = TimeSpan.FromMilliseconds(100));
        using var counts = new WriteCounts(host);

        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");
        await counts.StartCountingAfterAsync(frames: 2);

        // One transaction (and one notification) per row, while the client reads as fast as it can: without the delay
        // each frame would go out on its own as soon as it is routed.
        const int rows = 100;
        var reading = Task.Run(async () =>
        {
            for (var id = 1; id <= rows; id++)
            {
                var change = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
                change.GetProperty("type").GetString().Should().Be("change");
                change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id, "frames arrive in commit order");
            }
        });
        for (var id = 1; id <= rows; id++)
        {
            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES ({id}, 'row {id}')");
        }

        await reading;
        var (frames, writes) = counts.Since();
        frames.Should().Be(rows);
        writes.Should().BeLessThanOrEqualTo(rows / 2, "a socket that wrote less than 100 ms ago waits for the next round, and sends what queued meanwhile in one write");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(125)]
    [InlineData(126)]
    [InlineData(65_535)]
    [InlineData(65_536)]
    [InlineData(1_000_000)]
    public async Task FramesWrittenTogether_AreReadBackByTheRuntimesWebSocket_AtEveryLengthForm(int length)
    {
        var payloads = new[] { Encoding.UTF8.GetBytes("{\"a\":1}"), Encoding.UTF8.GetBytes(new string('y', length)), Encoding.UTF8.GetBytes("{\"b\":2}") };
        var wire = new MemoryStream();
        await using (var frames = new FrameStream(wire))
        {
            (await frames.WriteTextFramesAsync(payloads)).Should().BeTrue();
            wire = new MemoryStream(wire.ToArray());
        }

        // The client side of the runtime's own WebSocket parses what the server wrote.
        using var client = WebSocket.CreateFromStream(wire, new WebSocketCreationOptions { IsServer = false });
        var buffer = new byte[length + 64];
        foreach (var expected in payloads)
        {
            var received = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await client.ReceiveAsync(buffer.AsMemory(received), CancellationToken.None);
                received += result.Count;
            }
            while (!result.EndOfMessage);

            result.MessageType.Should().Be(WebSocketMessageType.Text);
            buffer.AsSpan(0, received).SequenceEqual(expected).Should().BeTrue();
        }
    }

    /// <summary>
    /// The host's <c>frames_sent</c> and <c>writes</c> counters, from a point on. The server counts a frame once its
    /// write completes, which can be after the client has read it: <see cref="StartCountingAfterAsync"/> waits until the
    /// frames read so far are counted, so none of them is counted in <see cref="Since"/>.
    /// </summary>
    private sealed class WriteCounts : IDisposable
    {
        private readonly ConcurrentDictionary<string, long> _totals = new();
        private readonly MeterListener _listener;
        private long _framesBefore;
        private long _writesBefore;

        public WriteCounts(WebHost host)
        {
            var factory = host.App.Services.GetRequiredService<IMeterFactory>();
            _listener = new MeterListener
            {
                InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Name == "PgNotify" && ReferenceEquals(instrument.Meter.Scope, factory)
                        && instrument.Name is "pgnotify.websocket.writes" or "pgnotify.websocket.frames_sent")
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                },
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => _totals.AddOrUpdate(instrument.Name, value, (_, v) => v + value));
            _listener.Start();
        }

        private long Frames => _totals.GetValueOrDefault("pgnotify.websocket.frames_sent");

        private long Writes => _totals.GetValueOrDefault("pgnotify.websocket.writes");

        public async Task StartCountingAfterAsync(int frames)
        {
            using var counted = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (Frames < frames)
            {
                await Task.Delay(10, counted.Token);
            }

            (_framesBefore, _writesBefore) = (Frames, Writes);
        }

        public (long Frames, long Writes) Since() => (Frames - _framesBefore, Writes - _writesBefore);

        public void Dispose() => _listener.Dispose();
    }
}
