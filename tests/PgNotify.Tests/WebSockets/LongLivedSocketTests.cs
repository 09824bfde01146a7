using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>A socket lives for hours: what the client sends over its lifetime is not an HTTP request body to limit.</summary>
public sealed class LongLivedSocketTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task MoreThanKestrelsRequestBodyLimitSentOverOneSocket_KeepsItServing()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws =>
        {
            ws.MaxMessageBytes = 64 * 1024;
            ws.MaxMessagesPerSecond = 100_000;
        });
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        // 40 MB of pings (Kestrel's default MaxRequestBodySize is 30 MB), each answered.
        var pad = new string('x', 60 * 1024);
        const int pings = 680;
        long sent = 0;
        var send = Task.Run(async () =>
        {
            for (var i = 0; i < pings; i++)
            {
                var message = $"{{\"type\":\"ping\",\"id\":{i},\"pad\":\"{pad}\"}}";
                await socket.SendAsync(message);
                sent += Encoding.UTF8.GetByteCount(message);
            }
        });
        for (var i = 0; i < pings; i++)
        {
            var pong = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
            pong.GetProperty("type").GetString().Should().Be("pong");
            pong.GetProperty("id").GetInt32().Should().Be(i);
        }

        await send;
        sent.Should().BeGreaterThan(new KestrelServerLimits().MaxRequestBodySize!.Value, "the socket carried more than one request body may");
        socket.Socket.State.Should().Be(System.Net.WebSockets.WebSocketState.Open);
    }
}
