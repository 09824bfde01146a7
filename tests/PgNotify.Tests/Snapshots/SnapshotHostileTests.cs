using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Snapshots;

/// <summary>Hostile and crowded snapshot requests: wrong types, odd limits, floods, odd table names, a full queue.</summary>
public sealed class SnapshotHostileTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Theory]
    [InlineData("\"snapshot\":\"yes\"", "\"snapshot\" must be true or false")]
    [InlineData("\"snapshot\":1", "\"snapshot\" must be true or false")]
    [InlineData("\"snapshot\":{}", "\"snapshot\" must be true or false")]
    [InlineData("\"snapshot\":[true]", "\"snapshot\" must be true or false")]
    [InlineData("\"snapshot\":true,\"limit\":0", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":-5", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":1.5", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":1e400", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":9223372036854775808", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":\"10\"", "\"limit\" must be a whole number")]
    [InlineData("\"snapshot\":true,\"limit\":true", "\"limit\" must be a whole number")]
    [InlineData("\"limit\":10", "\"limit\" needs \"snapshot\": true")]
    [InlineData("\"snapshot\":false,\"limit\":10", "\"limit\" needs \"snapshot\": true")]
    [InlineData("\"snapshot\":true,\"since\":5", "\"snapshot\" and \"since\" do not go together")]
    public void Parse_HostileSnapshotFields_AreInvalidMessageWithTheRequestId(string fields, string message)
    {
        var request = ClientRequest.Parse(Encoding.UTF8.GetBytes($"{{\"type\":\"subscribe\",\"id\":\"x\",\"tables\":[\"t\"],{fields}}}"), out var error);
        request.Should().BeNull();
        error!.Code.Should().Be(Protocol.ErrorCodes.InvalidMessage);
        error.Message.Should().Contain(message);
        error.Id.Should().Be(ClientRequest.Parse("{\"type\":\"ping\",\"id\":\"x\"}"u8.ToArray(), out _)!.Id);
    }

    [Theory]
    [InlineData("\"snapshot\":true", true, null)]
    [InlineData("\"snapshot\":null", false, null)]
    [InlineData("\"snapshot\":false", false, null)]
    [InlineData("\"snapshot\":true,\"limit\":null", true, null)]
    [InlineData("\"snapshot\":true,\"limit\":1", true, 1L)]
    [InlineData("\"snapshot\":true,\"limit\":9223372036854775807", true, long.MaxValue)]
    public void Parse_ValidSnapshotFields_AreRead(string fields, bool snapshot, long? limit)
    {
        var request = ClientRequest.Parse(Encoding.UTF8.GetBytes($"{{\"type\":\"subscribe\",\"tables\":[\"t\"],{fields}}}"), out var error);
        error.Should().BeNull();
        request!.Snapshot.Should().Be(snapshot);
        request.Limit.Should().Be(limit);
    }

    [Fact]
    public async Task SnapshotsWaitingForTheirTurn_DoNotDelayLiveDelivery_AndTheirSocketsAnswerPingsAndGetTheRowsAfterwards()
    {
        var table = await db.CreateTableAsync();
        var quoted = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, 'row ' || g FROM generate_series(1, 50) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.MaxConcurrentSnapshots = 1);
        await using var plain = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await plain.ReceiveTypeAsync("subscribed");

        // The one snapshot slot is taken: every socket's snapshot waits.
        var blocker = await host.App.Services.GetRequiredService<IPgTableSnapshots>().BeginAsync();
        var waiting = await Task.WhenAll(Enumerable.Range(0, 100).Select(async i =>
        {
            var socket = await TestSocket.ConnectAsync(host.SocketUri());
            await socket.SendJsonAsync(new { type = "subscribe", id = i, tables = new[] { table }, snapshot = true });
            (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
            return socket;
        }));
        try
        {
            await db.ExecuteAsync($"INSERT INTO {quoted} VALUES (51, 'during the wait')");
            (await plain.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(51, "live delivery never waits for snapshots");

            var pong = await waiting[0].RequestAsync(new { type = "ping", id = "hb" });
            pong.GetProperty("type").GetString().Should().Be("pong", "a socket waiting for its snapshot still answers its heartbeat (its change is held)");

            await blocker.DisposeAsync();
            await Task.WhenAll(waiting.Select(async (socket, i) =>
            {
                var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, i);
                end.GetProperty("count").GetInt32().Should().Be(51);
                rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 51));

                // Row 51 is in the rows: its change, held while the snapshot waited, is not sent again.
                (await socket.RequestAsync(new { type = "ping", id = "after" })).GetProperty("type").GetString().Should().Be("pong");
            }));
        }
        finally
        {
            await blocker.DisposeAsync();
            await Task.WhenAll(waiting.Select(s => s.DisposeAsync().AsTask()));
        }
    }

    [Fact]
    public async Task FloodOfSnapshotRequestsOnOneSocket_AreServedOneAfterAnother_AndThePingAmongThemIsAnswered()
    {
        var table = await db.CreateTableAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 2000) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.MaxMessagesPerSecond = 1_000);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        for (var i = 0; i < 30; i++)
        {
            await socket.SendJsonAsync(new { type = "subscribe", id = i, tables = new[] { table }, snapshot = true });
        }

        await socket.SendJsonAsync(new { type = "ping", id = "meanwhile" });
        var pongs = 0;
        for (var i = 0; i < 30; i++)
        {
            // Each request's acknowledgment, then all its rows and its end, before the next request's acknowledgment.
            var frame = await socket.ReceiveAsync();
            while (frame.GetProperty("type").GetString() == "pong")
            {
                pongs++;
                frame = await socket.ReceiveAsync();
            }

            frame.GetProperty("type").GetString().Should().Be("subscribed");
            frame.GetProperty("id").GetInt32().Should().Be(i);
            var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, i, other: f =>
            {
                f.GetProperty("type").GetString().Should().Be("pong");
                pongs++;
            });
            rows.Should().HaveCount(2000);
            end.GetProperty("count").GetInt32().Should().Be(2000);
        }

        if (pongs == 0)
        {
            (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("pong");
        }
    }

    [Fact]
    public async Task TableWithOddCharactersInItsName_IsSnapshottedByItsQuotedName()
    {
        var name = "odd \"name\". x;" + Guid.NewGuid().ToString("N")[..6];
        await db.ExecuteAsync($"CREATE TABLE {PostgresFixture.Quote(name)} (\"key \"\"col\" int PRIMARY KEY, v text)");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(name)} VALUES (2, 'b'), (1, 'a')");
        var tableName = new PgTableName("public", name).ToString();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [tableName]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SendJsonAsync(new Dictionary<string, object> { ["type"] = "subscribe", ["id"] = "odd", ["tables"] = new[] { tableName }, ["snapshot"] = true, ["filter"] = new Dictionary<string, object> { ["key \"col"] = new { gte = 1 } } });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "odd");
        rows.Select(r => r.GetProperty("key \"col").GetInt32()).Should().Equal(1, 2);
        end.GetProperty("key").EnumerateArray().Select(k => k.GetString()).Should().Equal("key \"col");
        end.GetProperty("table").GetString().Should().Be(name);
    }
}
