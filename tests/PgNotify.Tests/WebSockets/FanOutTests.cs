using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HeavyCollection
{
    public const string Name = "Heavy fan-out (runs alone so timings mean something)";
}

[Collection(HeavyCollection.Name)]
public sealed class FanOutTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ThousandConcurrentSockets_EachReceiveEveryChange()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var sockets = new List<TestSocket>();
        try
        {
            for (var batch = 0; batch < 10; batch++)
            {
                sockets.AddRange(await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => TestSocket.ConnectAsync(host.SocketUri("tables=" + table)))));
            }

            await Task.WhenAll(sockets.Select(s => s.ReceiveTypeAsync("subscribed")));
            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 10) g");

            var received = await Task.WhenAll(sockets.Select(async s =>
            {
                var ids = new List<int>();
                for (var i = 0; i < 10; i++)
                {
                    ids.Add((await s.ReceiveAsync(TimeSpan.FromSeconds(30))).GetProperty("data").GetProperty("id").GetInt32());
                }

                return ids;
            }));

            received.Should().HaveCount(1000).And.OnlyContain(ids => ids.SequenceEqual(Enumerable.Range(1, 10)));
        }
        finally
        {
            await Task.WhenAll(sockets.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task ClientThatNeverReads_DoesNotDelayOthers_MemoryStaysBounded_AndItIsToldWhatItMissed()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, ws => ws.SendQueueCapacity = 2_000, "id int PRIMARY KEY, body text", o => o.SetBuffer(1024, 1024));
        var (stalled, table) = (scenario.Socket, scenario.Table);
        await using var reader = await scenario.ConnectAnotherAsync();

        const int rows = 20_000; // ~40 MB of frames for the stalled socket if nothing were bounded
        const int batch = 500;
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        var latencies = new List<TimeSpan>();
        var t = PostgresFixture.Quote(table);
        for (var start = 1; start <= rows; start += batch)
        {
            // A paced writer: each batch must reach the reading client before the next one is written.
            await db.ExecuteAsync($"INSERT INTO {t} SELECT g, repeat('x', 2000) FROM generate_series({start}, {start + batch - 1}) g");
            for (var i = 0; i < batch; i++)
            {
                var frame = await reader.ReceiveAsync(TimeSpan.FromSeconds(30));
                frame.GetProperty("type").GetString().Should().Be("change", "the reading client keeps up and must lose nothing");
                frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(start + i);
                if (i == batch - 1)
                {
                    latencies.Add(DateTimeOffset.UtcNow - frame.GetProperty("ts").GetDateTimeOffset());
                }
            }
        }

        var peak = GC.GetTotalMemory(forceFullCollection: true);

        latencies.Max().Should().BeLessThan(TimeSpan.FromSeconds(5), "the reading client is served promptly whatever the stalled one does");
        (peak - baseline).Should().BeLessThan(20 * 1024 * 1024, "the stalled socket's queue is bounded (2,000 frames), not 20,000");

        // When the stalled client finally reads, it gets what fit, then one resync saying how many it lost.
        var skipped = new List<JsonElement>();
        var resync = await stalled.ReceiveTypeAsync("resync", skipped, TimeSpan.FromSeconds(30));
        resync.GetProperty("reason").GetString().Should().Be("slow_consumer");
        var missed = resync.GetProperty("missed").GetInt64();
        missed.Should().BePositive();
        (skipped.Count(f => f.GetProperty("type").GetString() == "change") + missed).Should().Be(rows, "every change was either delivered or counted as missed");
    }

    [Fact]
    public async Task ClientThatKeepsFallingBehind_GetsAtMostAboutOneResyncPerSecond_AndTheCountsAddUp()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, ws => ws.SendQueueCapacity = 20, "id int PRIMARY KEY, body text", o => o.SetBuffer(1024, 1024));
        var (socket, table) = (scenario.Socket, scenario.Table);

        // Bursts far larger than the 20-frame queue, for about three seconds.
        var watch = Stopwatch.StartNew();
        const int batches = 30, perBatch = 2_000;
        var writer = Task.Run(async () =>
        {
            for (var b = 0; b < batches; b++)
            {
                await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, repeat('x', 200) FROM generate_series({(b * perBatch) + 1}, {(b + 1) * perBatch}) g");
                await Task.Delay(100);
            }
        });

        var changes = 0;
        long missed = 0;
        var resyncs = 0;
        var frames = 0;
        while (changes + missed < batches * perBatch)
        {
            // A reader slower than the writers (at most about 5,000 frames a second against 20,000 rows a second), so
            // that it falls behind whatever the server's and the kernel's buffers hold.
            if (++frames % 100 == 0)
            {
                await Task.Delay(20);
            }

            JsonElement frame;
            try
            {
                frame = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                throw new InvalidOperationException($"No frame for 30 s with {changes} changes and {missed} missed of {batches * perBatch}, after {resyncs} resync(s); writer done: {writer.IsCompleted}.");
            }

            switch (frame.GetProperty("type").GetString())
            {
                case "change":
                    changes++;
                    break;
                case "resync":
                    resyncs++;
                    // A slow consumer's resync counts what it missed; any other (a listener reconnect) cannot.
                    missed += frame.TryGetProperty("missed", out var count)
                        ? count.GetInt64()
                        : throw new InvalidOperationException($"A resync without a count: {frame.GetRawText()}");
                    break;
            }
        }

        await writer;
        (changes + missed).Should().Be(batches * perBatch, "every change was delivered or counted as missed");
        resyncs.Should().BePositive();
        resyncs.Should().BeLessThanOrEqualTo((int)Math.Ceiling(watch.Elapsed.TotalSeconds) + 1, "slow-consumer resyncs are at most about one a second");
    }

    [Fact]
    public async Task SlowConsumerPolicyClose_ClosesTheStalledSocketWith1008()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, ws =>
        {
            ws.SendQueueCapacity = 100;
            ws.SlowConsumerPolicy = PgNotify.WebSockets.PgSlowConsumerPolicy.Close;
        }, "id int PRIMARY KEY, body text", o => o.SetBuffer(1024, 1024));
        var stalled = scenario.Socket;

        await db.ExecuteAsync($"INSERT INTO {scenario.QuotedTable} SELECT g, repeat('x', 2000) FROM generate_series(1, 10000) g");

        (await stalled.ReceiveCloseAsync(TimeSpan.FromSeconds(30))).Should().Be(WebSocketCloseStatus.PolicyViolation);
        stalled.Socket.CloseStatusDescription.Should().Be("slow consumer");
    }

    [Fact]
    public async Task TwoAppInstancesOnOneDatabase_EachDeliverEveryChangeToTheirSockets()
    {
        var table = await db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        await using var first = await WebHost.StartAsync(db.ConnectionString, channel, [table]);
        await using var second = await WebHost.StartAsync(db.ConnectionString, channel, [table]);
        await using var a = await TestSocket.ConnectAsync(first.SocketUri("tables=" + table));
        await using var b = await TestSocket.ConnectAsync(second.SocketUri("tables=" + table));
        await a.ReceiveTypeAsync("subscribed");
        await b.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'x' FROM generate_series(1, 25) g");

        foreach (var socket in new[] { a, b })
        {
            var ids = new List<int>();
            for (var i = 0; i < 25; i++)
            {
                ids.Add((await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32());
            }

            ids.Should().Equal(Enumerable.Range(1, 25));
        }
    }

    [Fact]
    public async Task Shutdown_ClosesEverySocketWith1001_Promptly()
    {
        var table = await db.CreateTableAsync();
        var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var sockets = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => TestSocket.ConnectAsync(host.SocketUri("tables=" + table))));
        await Task.WhenAll(sockets.Select(s => s.ReceiveTypeAsync("subscribed")));

        var closes = sockets.Select(s => s.ReceiveCloseAsync(TimeSpan.FromSeconds(20))).ToList();
        var watch = Stopwatch.StartNew();
        await host.DisposeAsync();
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(8));

        (await Task.WhenAll(closes)).Should().OnlyContain(status => status == WebSocketCloseStatus.EndpointUnavailable);
        foreach (var socket in sockets)
        {
            await socket.DisposeAsync();
        }
    }

    [Fact]
    public async Task ListenerReconnect_SendsResyncToSubscribedSockets_ThenChangesFlowAgain()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db);
        var socket = scenario.Socket;

        await db.TerminateListenersAsync();

        var resync = await socket.ReceiveAsync();
        resync.GetProperty("type").GetString().Should().Be("resync");
        resync.GetProperty("reason").GetString().Should().Be("listener_reconnected");
        await db.ExecuteAsync($"INSERT INTO {scenario.QuotedTable} VALUES (1, 'after')");
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("change");
    }
}
