using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>A peer that stops answering pings is aborted, so dead clients do not hold sockets forever.</summary>
public sealed class KeepAliveTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task PeerThatNeverAnswersPings_IsAbortedAfterIntervalPlusTimeout()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws =>
        {
            ws.KeepAliveInterval = TimeSpan.FromSeconds(1);
            ws.KeepAliveTimeout = TimeSpan.FromSeconds(1);
        });

        // A raw TCP client: it completes the WebSocket handshake and then never reads or answers anything, the way a
        // client behind a dead network path behaves (ClientWebSocket would answer pings by itself).
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(host.BaseAddress.Host, host.BaseAddress.Port);
        var stream = tcp.GetStream();
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var handshake = $"GET /ws/changes/?tables={table} HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\nUpgrade: websocket\r\n" +
                        $"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(handshake));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer);
        Encoding.ASCII.GetString(buffer, 0, read).Should().StartWith("HTTP/1.1 101");

        // Drain whatever the server sends (welcome, ack, pings) without ever answering, until it gives up on us.
        var watch = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            while (await stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (IOException)
        {
            // A reset is as good as a close here.
        }

        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10), "the server aborts the peer after about interval + timeout");
        watch.Elapsed.Should().BeGreaterThan(TimeSpan.FromSeconds(1), "it waited for the pong before giving up");
    }
}
