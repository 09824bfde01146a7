using System.Net;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>
/// WebSockets over HTTP/2 (RFC 8441, extended CONNECT) take ASP.NET Core's own accept rather than PgNotify's HTTP/1.1
/// handshake: the same protocol works there too.
/// </summary>
public sealed class Http2Tests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task OverHttp2_TheSocketSubscribesReceivesChangesAndAnswersRequests()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configureBuilder: b => b.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2)));

        // HTTP/2 without TLS (prior knowledge), as a reverse proxy or a service mesh may speak it to the app.
        using var invoker = new HttpMessageInvoker(new SocketsHttpHandler());
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o =>
        {
            o.HttpVersion = HttpVersion.Version20;
            o.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            o.CollectHttpResponseDetails = true;
        }, invoker: invoker);
        socket.Socket.HttpStatusCode.Should().Be(HttpStatusCode.OK, "an HTTP/2 WebSocket is accepted with 200, not 101");
        await socket.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 5) g");
        for (var id = 1; id <= 5; id++)
        {
            (await socket.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
        }

        (await socket.RequestAsync(new { type = "ping", id = "p1" })).GetProperty("type").GetString().Should().Be("pong");
        await socket.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        socket.Socket.CloseStatus.Should().Be(WebSocketCloseStatus.NormalClosure);
    }
}
