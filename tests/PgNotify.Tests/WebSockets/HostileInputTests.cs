using System.Net.WebSockets;
using System.Text;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>Malformed and hostile client input gets an error frame; the socket and the server keep working.</summary>
public sealed class HostileInputTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<string, string> BadMessages()
    {
        var data = new TheoryData<string, string>
        {
            { "", "invalid_json" },
            { "not json", "invalid_json" },
            { "{", "invalid_json" },
            { "{\"type\":\"ping\"", "invalid_json" },
            { "{'type':'ping'}", "invalid_json" },
            { "{\"type\":\"ping\",}", "invalid_json" },
            { "null", "invalid_message" },
            { "42", "invalid_message" },
            { "\"subscribe\"", "invalid_message" },
            { "[]", "invalid_message" },
            { "[{\"type\":\"ping\"}]", "invalid_message" },
            { "{}", "invalid_message" },
            { "{\"type\":42}", "invalid_message" },
            { "{\"type\":null}", "invalid_message" },
            { "{\"type\":[\"subscribe\"]}", "invalid_message" },
            { "{\"type\":\"SUBSCRIBE\",\"tables\":[\"x\"]}", "unknown_type" },
            { "{\"type\":\"drop table\"}", "unknown_type" },
            { "{\"type\":\"ping\",\"id\":{\"a\":1}}", "invalid_message" },
            { "{\"type\":\"ping\",\"id\":1.5}", "invalid_message" },
            { "{\"type\":\"ping\",\"id\":\"" + new string('i', 129) + "\"}", "invalid_message" },
            { "{\"type\":\"subscribe\"}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":\"profiles\"}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[42]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[null]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"" + new string('t', 201) + "\"]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"pg_catalog.pg_authid\"]}", "unknown_table" },
            { "{\"type\":\"subscribe\",\"tables\":[\"pgnotify.large_payload\"]}", "unknown_table" },
            { "{\"type\":\"subscribe\",\"tables\":[\"no_such_table\"]}", "unknown_table" },
            { "{\"type\":\"subscribe\",\"tables\":[\"a.b.c\"]}", "unknown_table" },
            { "{\"type\":\"subscribe\",\"tables\":[\"'; DROP TABLE x; --\"]}", "unknown_table" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":[\"MERGE\"]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":\"INSERT\"}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":[]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":[1]}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"like\":\"%\"}}}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"in\":[]}}}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"in\":[[1]]}}}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"gt\":true}}}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"\":1}}", "invalid_message" },
            { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"since\":5}", "invalid_position" },
            { "{\"type\":\"unsubscribe\",\"tables\":{}}", "invalid_message" },
            { new string('[', 5000) + new string(']', 5000), "invalid_json" },
            { "{\"a\":" + string.Concat(Enumerable.Repeat("{\"a\":", 40)) + "1" + new string('}', 41), "invalid_json" },
            { "{\"type\":\"ping\",\"pad\":\"" + new string('x', 15_000) + "\"}", "pong" },
            { "{\"type\":\"ping\",\"id\":\"\\ud800\"}", "invalid_message" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(BadMessages))]
    public async Task BadMessage_GetsErrorFrame_AndSocketStillWorks(string message, string expected)
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.SendAsync(message.Replace("TABLE", table, StringComparison.Ordinal));
        var answer = await socket.ReceiveAsync();
        if (expected == "pong")
        {
            answer.GetProperty("type").GetString().Should().Be("pong");
        }
        else
        {
            answer.GetProperty("type").GetString().Should().Be("error", answer.ToString());
            answer.GetProperty("code").GetString().Should().Be(expected, answer.ToString());
            answer.GetProperty("message").GetString().Should().NotBeNullOrWhiteSpace();
        }

        // Same socket: still subscribed and served.
        await socket.SubscribeAsync(table);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'still works')");
        (await socket.ReceiveAsync()).GetProperty("data").GetProperty("name").GetString().Should().Be("still works");
    }

    [Fact]
    public async Task ErrorFrame_CarriesTheRequestId()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        var error = await socket.RequestAsync(new { type = "subscribe", id = "req-9", tables = new[] { "secret_stuff" } });
        error.GetProperty("id").GetString().Should().Be("req-9");
        error.GetProperty("code").GetString().Should().Be("unknown_table");
        error.GetProperty("message").GetString().Should().Be("Table 'secret_stuff' is not available.");
    }

    [Fact]
    public async Task BinaryFrame_GetsUnsupportedDataError_AndSocketStaysOpen()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.Socket.SendAsync(new byte[] { 0, 1, 2, 255 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        var error = await socket.ReceiveAsync();
        error.GetProperty("code").GetString().Should().Be("unsupported_data");

        (await socket.RequestAsync(new { type = "ping", id = 1 })).GetProperty("type").GetString().Should().Be("pong");
    }

    [Fact]
    public async Task InvalidUtf8_ClosesWith1007AsRfc6455Requires_AndTheServerKeepsServing()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var bad = await TestSocket.ConnectAsync(host.SocketUri());

        await bad.Socket.SendAsync(new byte[] { (byte)'{', 0xC3, 0x28, (byte)'}' }, WebSocketMessageType.Text, true, CancellationToken.None);
        (await bad.ReceiveCloseAsync()).Should().Be(WebSocketCloseStatus.InvalidPayloadData);

        await using var good = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await good.ReceiveTypeAsync("subscribed");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'ok')");
        (await good.ReceiveAsync()).GetProperty("type").GetString().Should().Be("change");
    }

    [Fact]
    public async Task FragmentedTenMegabyteMessage_ClosesWith1009_AndTheServerKeepsServing()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var big = await TestSocket.ConnectAsync(host.SocketUri());
        await using var bystander = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await bystander.ReceiveTypeAsync("subscribed");

        var chunk = Encoding.UTF8.GetBytes("{\"type\":\"ping\",\"pad\":\"" + new string('x', 64 * 1024));
        var sending = Task.Run(async () =>
        {
            try
            {
                for (var sent = 0; sent < 10 * 1024 * 1024; sent += chunk.Length)
                {
                    await big.Socket.SendAsync(chunk, WebSocketMessageType.Text, endOfMessage: false, CancellationToken.None);
                }
            }
            catch (WebSocketException)
            {
                // The server closed on us mid-message: that is the point.
            }
        });

        (await big.ReceiveCloseAsync(TimeSpan.FromSeconds(30))).Should().Be(WebSocketCloseStatus.MessageTooBig);
        await sending.WaitAsync(TimeSpan.FromSeconds(30));

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'still serving')");
        (await bystander.ReceiveAsync()).GetProperty("data").GetProperty("name").GetString().Should().Be("still serving");
    }

    [Fact]
    public async Task Flood_GetsRateLimitedError_ThenRequestsWorkAgain()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.MaxMessagesPerSecond = 5);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        for (var i = 0; i < 8; i++)
        {
            await socket.SendJsonAsync(new { type = "ping", id = i });
        }

        var frames = new List<System.Text.Json.JsonElement>();
        for (var i = 0; i < 6; i++)
        {
            frames.Add(await socket.ReceiveAsync());
        }

        frames.Count(f => f.GetProperty("type").GetString() == "pong").Should().Be(5);
        frames.Should().ContainSingle(f => f.GetProperty("type").GetString() == "error")
            .Which.GetProperty("code").GetString().Should().Be("rate_limited");

        await Task.Delay(1100); // the bucket refills with time: this waits for the documented refill, not for a race
        (await socket.RequestAsync(new { type = "ping", id = "again" })).GetProperty("type").GetString().Should().Be("pong");
    }
}
