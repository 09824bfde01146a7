using System.Diagnostics;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>A peer that stops answering pings, or never answers our close, is dropped, so dead clients do not hold sockets forever.</summary>
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
        var stream = await HandshakeAsync(tcp, host, table);
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

    [Fact]
    public async Task PeerThatNeverAnswersOurClose_IsDroppedAfterTheCloseTimeout_AndItsConnectionIsReleased()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws =>
        {
            ws.MaxMessagesPerSecond = 1;
            ws.MaxConnectionsPerClient = 1; // the next socket is let in only once this one's end was counted
        });

        using var tcp = new TcpClient();
        var stream = await HandshakeAsync(tcp, host, table);
        var received = new List<byte>();
        var buffer = new byte[4096];
        while (HeadersEnd(received) < 0)
        {
            // As RFC 6455 asks of a client: the handshake's response first, frames after it. (A client that sends
            // before may see the server's frames before the 101 with DirectSocketWrites: its own connection's problem.)
            var read = await stream.ReadAsync(buffer);
            read.Should().BePositive("the server answers the handshake");
            received.AddRange(buffer.AsSpan(0, read).ToArray());
        }

        // Flood at far more than ten times the limit: the server closes with 1008. This client reads the close frame
        // and never answers it.
        var ping = MaskedText("""{"type":"ping"}""");
        for (var i = 0; i < 40; i++)
        {
            await stream.WriteAsync(ping);
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Stopwatch? sinceClose = null;
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.AddRange(buffer.AsSpan(0, read).ToArray());
                if (sinceClose is null && ContainsClose1008(received))
                {
                    sinceClose = Stopwatch.StartNew();
                }
            }
        }
        catch (IOException)
        {
            // A reset is as good as a close here.
        }

        sinceClose.Should().NotBeNull("the server closes a flooding client with 1008");
        sinceClose!.Elapsed.Should().BeGreaterThan(TimeSpan.FromSeconds(3), "the client has a few seconds to answer the close");
        sinceClose.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(20), "a close that is never answered does not hold the connection");

        // The dropped socket's end is counted (a moment after the connection goes): the same client may open its one
        // socket again. Polled, not timed: the bound only keeps a broken release from hanging the test.
        using var released = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            try
            {
                await using var next = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}"));
                break;
            }
            catch (WebSocketException ex) when (ex.Message.Contains("'429'", StringComparison.Ordinal) && !released.IsCancellationRequested)
            {
                await Task.Delay(50, CancellationToken.None);
            }
        }
    }

    /// <summary>Connects <paramref name="tcp"/> and sends a WebSocket handshake subscribing to <paramref name="table"/>; reads nothing.</summary>
    private static async Task<NetworkStream> HandshakeAsync(TcpClient tcp, WebHost host, string table)
    {
        await tcp.ConnectAsync(host.BaseAddress.Host, host.BaseAddress.Port);
        var stream = tcp.GetStream();
        var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        var handshake = $"GET /ws/changes/?tables={table} HTTP/1.1\r\nHost: {host.BaseAddress.Authority}\r\nUpgrade: websocket\r\n" +
                        $"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(handshake));
        return stream;
    }

    private static byte[] MaskedText(string text)
    {
        var payload = Encoding.UTF8.GetBytes(text);
        var frame = new byte[6 + payload.Length];
        frame[0] = 0x81;
        frame[1] = (byte)(0x80 | payload.Length);
        var mask = new byte[] { 0x12, 0x34, 0x56, 0x78 };
        mask.CopyTo(frame, 2);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[6 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    /// <summary>True when the server frames read so far include a close frame with code 1008 (server frames are unmasked).</summary>
    private static bool ContainsClose1008(List<byte> bytes)
    {
        for (var i = HeadersEnd(bytes); i >= 0 && i + 4 <= bytes.Count;)
        {
            var length = bytes[i + 1] & 0x7F;
            var header = 2;
            if (length == 126)
            {
                if (i + 4 > bytes.Count)
                {
                    return false;
                }

                length = (bytes[i + 2] << 8) | bytes[i + 3];
                header = 4;
            }

            if ((bytes[i] & 0x0F) == 0x8 && i + header + 2 <= bytes.Count)
            {
                return ((bytes[i + header] << 8) | bytes[i + header + 1]) == 1008;
            }

            i += header + length;
        }

        return false;
    }

    private static int HeadersEnd(List<byte> bytes)
    {
        for (var i = 3; i < bytes.Count; i++)
        {
            if (bytes[i - 3] == '\r' && bytes[i - 2] == '\n' && bytes[i - 1] == '\r' && bytes[i] == '\n')
            {
                return i + 1;
            }
        }

        return -1;
    }
}
