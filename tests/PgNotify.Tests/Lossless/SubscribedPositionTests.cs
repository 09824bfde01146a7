using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Lossless;

/// <summary>
/// The <c>position</c> of <c>subscribed</c> (lossless delivery): the head position a client can resume from, even for a
/// table that saw no change yet (docs/protocol.md, "subscribe").
/// </summary>
public sealed class SubscribedPositionTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Subscribed_ToATableThatSawNoChange_CarriesTheHeadPosition_AndResumingFromItGetsExactlyWhatCameAfter()
    {
        var table = await db.CreateTableAsync();
        var other = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table, other], configure: o => o.LosslessDelivery = true);

        // Another table moves the log's head: a socket watching it sees where that change went.
        await using var watcher = await TestSocket.ConnectAsync(host.SocketUri("tables=" + other));
        await watcher.ReceiveTypeAsync("subscribed");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(other)} VALUES (1, 'elsewhere'), (2, 'elsewhere')");
        await watcher.ReceiveTypeAsync("change");
        var otherHead = (await watcher.ReceiveTypeAsync("change")).GetProperty("position").GetInt64();

        long head;
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri()))
        {
            var subscribed = await socket.RequestAsync(new { type = "subscribe", id = "s1", tables = new[] { table } });
            subscribed.GetProperty("type").GetString().Should().Be("subscribed");
            subscribed.GetProperty("id").GetString().Should().Be("s1");
            head = subscribed.GetProperty("position").GetInt64();
            head.Should().Be(otherHead, "nothing was written after the other table's change, and it was routed before the subscription");
        }

        // While the client is away, its table changes for the first time.
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'missed' FROM generate_series(1, 5) g");

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={head}"));
        var ack = await resumed.ReceiveTypeAsync("subscribed");
        // The replay's end: the rows may be in it, or (when the server had not read them from the log yet) come live.
        var through = ack.GetProperty("position").GetInt64();
        through.Should().BeGreaterThanOrEqualTo(head);
        var last = head;
        var ids = new List<int>();
        for (var i = 0; i < 5; i++)
        {
            var frame = await resumed.ReceiveAsync();
            frame.GetProperty("type").GetString().Should().Be("change");
            frame.GetProperty("position").GetInt64().Should().BeGreaterThan(last);
            last = frame.GetProperty("position").GetInt64();
            ids.Add(frame.GetProperty("data").GetProperty("id").GetInt32());
        }

        ids.Should().Equal(1, 2, 3, 4, 5);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (6, 'live')");
        var live = await resumed.ReceiveAsync();
        live.GetProperty("data").GetProperty("id").GetInt32().Should().Be(6, "no duplicate and no gap after the replay");
        live.GetProperty("position").GetInt64().Should().BeGreaterThan(last);
    }

    [Fact]
    public async Task Subscribed_WithSince_CarriesTheReplaysThrough_TheLastPositionItReplays()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.LosslessDelivery = true);
        await using var watcher = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        var start = (await watcher.ReceiveTypeAsync("subscribed")).GetProperty("position").GetInt64();
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'x' FROM generate_series(1, 3) g");
        var positions = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            positions.Add((await watcher.ReceiveTypeAsync("change")).GetProperty("position").GetInt64());
        }

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri());
        var ack = await resumed.RequestAsync(new { type = "subscribe", id = 7, tables = new[] { table }, since = start });
        ack.GetProperty("type").GetString().Should().Be("subscribed");
        ack.GetProperty("position").GetInt64().Should().Be(positions[^1]);
        for (var i = 0; i < 3; i++)
        {
            (await resumed.ReceiveAsync()).GetProperty("position").GetInt64().Should().Be(positions[i]);
        }
    }

    [Fact]
    public async Task Subscribed_WithoutLosslessDelivery_HasNoPosition()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        var ack = await socket.RequestAsync(new { type = "subscribe", id = "s", tables = new[] { table } });
        ack.GetProperty("type").GetString().Should().Be("subscribed");
        ack.TryGetProperty("position", out _).Should().BeFalse();
    }
}
