using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using PgNotify.Client;
using PgNotify.Client.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Hostile;

/// <summary>
/// A hostile server (a raw WebSocket peer on real Kestrel): garbage, wrong types, huge numbers, deep nesting, lone
/// surrogates, binary and oversized frames, floods. None of it escapes the enumerator or drops the connection; a frame
/// the client could not use becomes a resync, so no change is lost without saying so. Invalid UTF-8 fails the
/// connection (RFC 6455 requires it): the client reconnects and says so.
/// </summary>
public sealed class HostileServerTests
{
    private const string Welcome = """{"type":"welcome","protocol":1,"lossless":false}""";

    private static string Change(string data, string extra = "") =>
        $$"""{"type":"change","schema":"public","table":"t","operation":"INSERT","xid":1,"seq":1,"ts":"2026-12-01T10:00:00+00:00","data":{{data}}{{extra}}}""";

    private static IEnumerable<byte[]> HostileFrames()
    {
        var deepArray = new string('[', 10_000) + new string(']', 10_000);
        string[] texts =
        [
            "not json", "{", "[]", "null", "42", "\"change\"", """{"type":5}""", """{"type":"change"}""", """{} {}""",
            """{"type":"change","schema":"public","table":"t","operation":"INSERT","data":"x"}""",
            """{"type":"change","schema":"public","table":"t","operation":"EXPLODE","data":{"id":1}}""",
            """{"type":"change","schema":"public","table":"\ud800","operation":"INSERT","data":{"id":1}}""",
            """{"type":"change","schema":"public","table":"t","operation":"DELETE"}""",
            """{"type":"change","schema":5,"table":[],"operation":{},"data":[]}""",
            """{"ty\ud800pe":"change"}""",
            """{"type":"snapshot","schema":"public","table":"t","rows":{}}""",
            """{"type":"snapshot","schema":"public","table":"t","rows":[1,2]}""",
            """{"type":"snapshot_end","schema":"public","table":"t","count":"x","key":["id"]}""",
            """{"type":"snapshot_end","schema":"public","table":"t","count":1e400,"key":[]}""",
            deepArray,
            $$"""{"type":"change","data":{{new string('[', 10_000)}}""",
            string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000),
            """{"type":"resync","reason":"slow_consumer","missed":1e400}""",
            """{"type":"subscribed","id":"nobody","tables":["t"]}""",
            """{"type":"subscribed","id":{"a":1},"tables":"t","position":"x"}""",
            """{"type":"error","id":null,"code":"weird","message":"\ud800"}""",
            """{"type":"unsubscribed","id":null,"reason":"forbidden","tables":[5]}""",
            """{"type":"unsubscribed","id":null,"reason":"forbidden","tables":["not.a.table.name"]}""",
            """{"type":"welcome","protocol":1e400}""",
            """{"type":"from_the_future","anything":[1,2,3]}""",
            Change("""{"id":1e400,"name":"huge"}""", ""","position":1e400"""),
            Change("""{"id":2,"name":"\ud800"}"""),
            Change("""{"id":3,"name":"deep","x":""" + deepArray + "}"), // past the client's depth limit: a resync
            Change("""{"id":30,"name":"deep within the limit","x":""" + new string('[', 500) + new string(']', 500) + "}"),
            Change("""{"id":4,"name":"wrong position type"}""", ""","position":"-12","xid":"x","seq":[],"ts":5"""),
        ];
        foreach (var text in texts)
        {
            yield return Encoding.UTF8.GetBytes(text);
        }
    }

    [Fact]
    public async Task HostileFrames_NeverThrowOutOfTheEnumerator_AndUnreadableOnesBecomeResyncs()
    {
        await using var server = await RawServer.StartAsync(async (context, number) =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await RawServer.SendAsync(socket, Welcome);
            var request = JsonDocument.Parse((await RawServer.ReceiveAsync(socket))!).RootElement;
            await RawServer.SendAsync(socket, $$"""{"type":"subscribed","id":"{{request.GetProperty("id").GetString()}}","tables":["t"]}""");
            if (number > 1)
            {
                await RawServer.SendAsync(socket, Change("""{"id":100,"name":"on the next connection"}"""));
                await RawServer.ReceiveAsync(socket);
                return;
            }

            foreach (var frame in HostileFrames())
            {
                await RawServer.SendAsync(socket, frame);
            }

            await RawServer.SendAsync(socket, [1, 2, 3], WebSocketMessageType.Binary);
            await RawServer.SendAsync(socket, Encoding.UTF8.GetBytes(Change($$"""{"id":5,"name":"{{new string('x', 100_000)}}"}""")));
            for (var i = 0; i < 20_000; i++)
            {
                await RawServer.SendAsync(socket, i % 2 == 0 ? """{"type":"pong","id":"p"}""" : Change("""{"id":6}""").Replace("\"table\":\"t\"", "\"table\":\"other\"", StringComparison.Ordinal));
            }

            await RawServer.SendAsync(socket, Change("""{"id":99,"name":"last"}"""));

            // Invalid UTF-8 in a text frame: RFC 6455 makes the client fail the connection (1007), so it reconnects.
            await RawServer.SendAsync(socket, [0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x7d]);
            await RawServer.ReceiveAsync(socket);
        });
        var logs = new LogCollector();
        await using var client = new PgNotifyClient(new PgNotifyClientOptions { Url = server.Url, MaxMessageBytes = 64 * 1024 }, logs);
        await client.ConnectAsync();

        await using var messages = new Collector(client.SubscribeAsync("t"));
        await messages.WaitForAsync<PgChangeMessage>(c => c.Data!.Value.GetProperty("id").GetRawText() == "99");
        var seen = messages.Seen.ToList();
        (await messages.WaitForAsync<PgResyncMessage>()).Reason.Should().Be("reconnected", "invalid UTF-8 ended the connection, and the live server cannot resume");
        await messages.WaitForAsync<PgChangeMessage>(c => c.Data!.Value.GetProperty("id").GetRawText() == "100");

        var changes = seen.OfType<PgChangeMessage>().ToList();
        changes.Select(c => c.Data!.Value.GetProperty("id").GetRawText()).Should().Equal("1e400", "2", "30", "4", "99");
        changes[0].Position.Should().BeNull("1e400 is not a position");
        changes[3].Position.Should().BeNull("a signed string is not a position (a string of digits is one: docs/protocol.md, \"Positions\")");
        changes[3].Xid.Should().BeNull();
        var resyncs = seen.OfType<PgResyncMessage>().Select(r => r.Reason).ToList();
        resyncs.Count(r => r == "invalid_frame").Should().BeGreaterThanOrEqualTo(20);
        resyncs.Count(r => r == "message_too_big").Should().Be(2, "the binary frame and the 100 KB one");
        resyncs.Should().Contain("slow_consumer");
        client.State.Should().Be(PgNotifyClientState.Connected);
        server.Connections.Should().Be(2, "only the invalid UTF-8 ended a connection");
        logs.All.Should().Contain(e => e.EventId == 3007).And.Contain(e => e.EventId == 3008);
    }

    [Fact]
    public async Task HandshakeRefusedOnAReconnect_FaultsTheClient_AndTheEnumeratorThrows()
    {
        await using var server = await RawServer.StartAsync(async (context, number) =>
        {
            if (number > 1)
            {
                context.Response.StatusCode = 401; // the credentials ran out
                return;
            }

            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await RawServer.SendAsync(socket, Welcome);
            var request = JsonDocument.Parse((await RawServer.ReceiveAsync(socket))!).RootElement;
            await RawServer.SendAsync(socket, $$"""{"type":"subscribed","id":"{{request.GetProperty("id").GetString()}}","tables":["t"]}""");
            await socket.CloseAsync(WebSocketCloseStatus.EndpointUnavailable, "going away", CancellationToken.None);
        });
        await using var client = new PgNotifyClient(new PgNotifyClientOptions { Url = server.Url, MinReconnectDelay = TimeSpan.FromMilliseconds(10) });
        await client.ConnectAsync();

        var collector = new Collector(client.SubscribeAsync("t"));
        var act = async () => await collector.Completion.WaitAsync(Collector.Timeout);

        var error = (await act.Should().ThrowAsync<PgNotifyException>()).Which;
        error.Code.Should().Be("handshake_refused");
        error.StatusCode.Should().Be(401);
        client.State.Should().Be(PgNotifyClientState.Faulted);
        server.Connections.Should().Be(2, "a refused handshake is not retried");
    }
}
