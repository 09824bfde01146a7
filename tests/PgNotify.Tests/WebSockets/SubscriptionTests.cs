using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>Subscribe, unsubscribe, operations and row filters, over real sockets against real Kestrel and PostgreSQL.</summary>
public sealed class SubscriptionTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private async Task<(WebHost Host, string Table, string Other)> StartAsync(string columns = "id int PRIMARY KEY, name text, user_id int, amount numeric")
    {
        var table = await db.CreateTableAsync(columns);
        var other = await db.CreateTableAsync(columns);
        var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table, other]);
        return (host, table, other);
    }

    private Task SqlAsync(string table, string sql) => db.ExecuteAsync(sql.Replace("{t}", PostgresFixture.Quote(table), StringComparison.Ordinal));

    [Fact]
    public async Task Subscribe_ByQueryString_AcksThenDeliversChangeFramesWithRowsAndOldRows()
    {
        var (host, table, _) = await StartAsync();
        await using var _h = host;
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));

        var ack = await socket.ReceiveAsync();
        ack.GetProperty("type").GetString().Should().Be("subscribed");
        ack.GetProperty("id").ValueKind.Should().Be(JsonValueKind.Null);
        ack.GetProperty("tables").EnumerateArray().Select(t => t.GetString()).Should().Equal(table);

        await SqlAsync(table, "INSERT INTO {t} (id, name, user_id) VALUES (1, 'alice', 42)");
        await SqlAsync(table, "UPDATE {t} SET name = 'bob' WHERE id = 1");
        await SqlAsync(table, "DELETE FROM {t} WHERE id = 1");

        var insert = await socket.ReceiveAsync();
        insert.GetProperty("type").GetString().Should().Be("change");
        insert.GetProperty("schema").GetString().Should().Be("public");
        insert.GetProperty("table").GetString().Should().Be(table);
        insert.GetProperty("operation").GetString().Should().Be("INSERT");
        insert.GetProperty("data").GetProperty("name").GetString().Should().Be("alice");
        insert.GetProperty("data").GetProperty("user_id").GetInt32().Should().Be(42);
        insert.TryGetProperty("old", out _).Should().BeFalse();
        insert.GetProperty("xid").GetInt64().Should().BePositive();
        insert.GetProperty("seq").GetInt64().Should().Be(1);

        var update = await socket.ReceiveAsync();
        update.GetProperty("operation").GetString().Should().Be("UPDATE");
        update.GetProperty("data").GetProperty("name").GetString().Should().Be("bob");
        update.GetProperty("old").GetProperty("name").GetString().Should().Be("alice");

        var delete = await socket.ReceiveAsync();
        delete.GetProperty("operation").GetString().Should().Be("DELETE");
        delete.GetProperty("old").GetProperty("id").GetInt32().Should().Be(1);
        delete.TryGetProperty("data", out _).Should().BeFalse();
    }

    [Fact]
    public async Task Subscribe_OnlyToItsTables_AndWithOperations_GetsNothingElse()
    {
        var (host, table, other) = await StartAsync();
        await using var _h = host;
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        var ack = await socket.RequestAsync(new { type = "subscribe", id = "r1", tables = new[] { table }, operations = new[] { "INSERT", "DELETE" } });
        ack.GetProperty("type").GetString().Should().Be("subscribed");
        ack.GetProperty("id").GetString().Should().Be("r1");

        await SqlAsync(other, "INSERT INTO {t} (id, name) VALUES (1, 'other table')");
        await SqlAsync(table, "INSERT INTO {t} (id, name) VALUES (1, 'a')");
        await SqlAsync(table, "UPDATE {t} SET name = 'not wanted'");
        await SqlAsync(table, "DELETE FROM {t}");

        (await socket.ReceiveAsync()).GetProperty("operation").GetString().Should().Be("INSERT");
        var next = await socket.ReceiveAsync();
        next.GetProperty("operation").GetString().Should().Be("DELETE", "the UPDATE and the other table's change are not subscribed");
    }

    [Fact]
    public async Task RowFilter_AppliesToInsertUpdateAndDelete_IncludingRowsLeavingTheFilter()
    {
        var (host, table, _) = await StartAsync();
        await using var _h = host;
        await using var mine = await TestSocket.ConnectAsync(host.SocketUri());
        await mine.SubscribeAsync(table, new { filter = new { user_id = 42 } });
        await using var big = await TestSocket.ConnectAsync(host.SocketUri());
        await big.SubscribeAsync(table, new { filter = new Dictionary<string, object> { ["amount"] = new { gte = 100 }, ["name"] = new { @in = new[] { "x", "y" } } } });

        await SqlAsync(table, "INSERT INTO {t} VALUES (1, 'x', 42, 5)");     // mine
        await SqlAsync(table, "INSERT INTO {t} VALUES (2, 'y', 7, 500)");    // big
        await SqlAsync(table, "INSERT INTO {t} VALUES (3, 'z', 7, 500)");    // neither (name)
        await SqlAsync(table, "UPDATE {t} SET user_id = 7 WHERE id = 1");    // mine: leaves the filter (old row matched)
        await SqlAsync(table, "DELETE FROM {t} WHERE id = 2");               // big: tested on the old row
        await SqlAsync(table, "INSERT INTO {t} VALUES (4, 'x', 42, 100)");   // both: sentinel

        var mineFrames = new[] { await mine.ReceiveAsync(), await mine.ReceiveAsync(), await mine.ReceiveAsync() };
        mineFrames.Select(f => (f.GetProperty("operation").GetString(), (f.TryGetProperty("data", out var d) ? d : f.GetProperty("old")).GetProperty("id").GetInt32()))
            .Should().Equal(("INSERT", 1), ("UPDATE", 1), ("INSERT", 4));

        var bigFrames = new[] { await big.ReceiveAsync(), await big.ReceiveAsync(), await big.ReceiveAsync() };
        bigFrames.Select(f => (f.GetProperty("operation").GetString(), (f.TryGetProperty("data", out var d) ? d : f.GetProperty("old")).GetProperty("id").GetInt32()))
            .Should().Equal(("INSERT", 2), ("DELETE", 2), ("INSERT", 4));
    }

    [Fact]
    public async Task Unsubscribe_StopsDelivery_AndResubscribeReplacesTheFilter()
    {
        var (host, table, other) = await StartAsync();
        await using var _h = host;
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SubscribeAsync(table);
        await socket.SubscribeAsync(other);

        var ack = await socket.RequestAsync(new { type = "unsubscribe", id = 7, tables = new[] { table } });
        ack.GetProperty("type").GetString().Should().Be("unsubscribed");
        ack.GetProperty("id").GetInt32().Should().Be(7);

        await SqlAsync(table, "INSERT INTO {t} (id) VALUES (1)");
        await SqlAsync(other, "INSERT INTO {t} (id) VALUES (2)");
        (await socket.ReceiveAsync()).GetProperty("table").GetString().Should().Be(other);

        await socket.SubscribeAsync(other, new { filter = new { id = 5 } });
        await SqlAsync(other, "INSERT INTO {t} (id) VALUES (3)");
        await SqlAsync(other, "INSERT INTO {t} (id) VALUES (5)");
        (await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(5);
    }

    [Fact]
    public async Task Ping_GetsPongWithItsId()
    {
        var (host, _, _) = await StartAsync();
        await using var _h = host;
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        var pong = await socket.RequestAsync(new { type = "ping", id = "p1" });
        pong.GetProperty("type").GetString().Should().Be("pong");
        pong.GetProperty("id").GetString().Should().Be("p1");
    }

    [Fact]
    public async Task SubscriptionAck_MeansLive_ChangeCommittedRightAfterAckIsDelivered()
    {
        var (host, table, _) = await StartAsync();
        await using var _h = host;
        for (var i = 0; i < 20; i++)
        {
            await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
            await socket.SubscribeAsync(table, new { filter = new { id = i } });
            await SqlAsync(table, $"INSERT INTO {{t}} (id) VALUES ({i})");
            (await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
        }
    }
}
