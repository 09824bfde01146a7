using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>
/// DirectSocketWrites (the default): frames go straight to the connection's socket once the client has spoken, stay on Kestrel's pipe
/// for a client that never answers, and never where a layer between the socket and the stream changes bytes (TLS).
/// Every case reads the whole byte stream and checks that it is a valid sequence of frames with every change in order.
/// </summary>
public sealed class DirectSocketWritesTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ClientWebSocket_SwitchesToDirectWritesByDefault_AndGetsEveryChangeInOrder()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        using var paths = new WritePaths(host);

        // Subscribed through the URL: the client says nothing itself, so the server's first frame asks with a ping.
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");
        paths.Direct.Should().Be(1, "the client answered the probe ping, so its frames go straight to the socket");
        paths.Pipe.Should().Be(0);

        // Small rows and rows above 64 KB (the 8-byte length form), one transaction each and in one batch.
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, repeat('x', g) FROM generate_series(1, 200) g");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (201, repeat('é', 40000))");
        for (var id = 1; id <= 201; id++)
        {
            var change = await socket.ReceiveTypeAsync("change");
            change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
            change.GetProperty("data").GetProperty("body").GetString().Should().HaveLength(id == 201 ? 40_000 : id);
        }
    }

    [Fact]
    public async Task RawClientThatNeverAnswers_GetsItsFramesThroughThePipe_AfterTheProbeTimesOut()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.DirectSocketWrites = true);
        using var paths = new WritePaths(host);

        using var tcp = new TcpClient();
        var reader = await RawClient.ConnectAsync(tcp, host.BaseAddress, table);
        var first = await reader.NextAsync();
        first.Opcode.Should().Be(0x9, "the server asks a silent client with a ping before its first frame");

        // Never answered: the welcome and the acknowledgement still come, through the pipe.
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("welcome");
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        paths.Pipe.Should().Be(1);
        paths.Direct.Should().Be(0);

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g FROM generate_series(1, 50) g");
        for (var id = 1; id <= 50; id++)
        {
            var change = await reader.NextTextAsync();
            change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
        }
    }

    [Fact]
    public async Task PingFloodWhileChangesFlow_PongsAndChangesNeverInterleaveInsideAFrame()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws =>
        {
            ws.MaxMessagesPerSecond = 100_000;
            ws.DirectSocketWrites = true;
        });
        using var paths = new WritePaths(host);

        using var tcp = new TcpClient();
        var reader = await RawClient.ConnectAsync(tcp, host.BaseAddress, table);
        (await reader.NextAsync()).Opcode.Should().Be(0x9);
        await reader.SendAsync(0xA, []); // the pong: the client has spoken
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("welcome");
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        paths.Direct.Should().Be(1);

        // 2,000 rows of 1 to 3,000 bytes while the client sends 3,000 pings with 125-byte payloads: the runtime's pongs
        // (written by the receive path) and the change frames (written by the fan-out) go to the socket concurrently.
        const int rows = 2_000;
        var pings = Task.Run(async () =>
        {
            for (var i = 0; i < 3_000; i++)
            {
                var payload = new byte[125];
                BinaryPrimitives.WriteInt32BigEndian(payload, i);
                await reader.SendAsync(0x9, payload);
            }
        });
        var insert = db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, repeat('y', 1 + g * 3 % 3000) FROM generate_series(1, {rows}) g");

        var nextId = 1;
        var pongs = 0;
        while (nextId <= rows || pongs < 3_000)
        {
            var frame = await reader.NextAsync();
            if (frame.Opcode == 0xA)
            {
                frame.Payload.Should().HaveCount(125);
                BinaryPrimitives.ReadInt32BigEndian(frame.Payload).Should().Be(pongs, "pongs answer the pings in order");
                pongs++;
                continue;
            }

            frame.Opcode.Should().Be(0x1);
            var change = JsonDocument.Parse(frame.Payload).RootElement;
            change.GetProperty("type").GetString().Should().Be("change");
            change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(nextId);
            change.GetProperty("data").GetProperty("body").GetString().Should().HaveLength(1 + nextId * 3 % 3000);
            nextId++;
        }

        await pings;
        await insert;
    }

    [Fact]
    public async Task ClientThatSendsBeforeReadingThe101_OnlyAffectsItsOwnConnection()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.DirectSocketWrites = true);
        await using var bystander = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await bystander.ReceiveTypeAsync("subscribed");

        // Against RFC 6455: frames (a flood of pings and requests) in the same packet as the handshake, 20 times over.
        var hostile = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                var tcp = new TcpClient();
                hostile.Add(tcp);
                await tcp.ConnectAsync(host.BaseAddress.Host, host.BaseAddress.Port);
                var bytes = new List<byte>(RawClient.Handshake(host.BaseAddress, table));
                for (var j = 0; j < 50; j++)
                {
                    bytes.AddRange(RawClient.Masked(0x9, [1, 2, 3]));
                    bytes.AddRange(RawClient.Masked(0x1, Encoding.UTF8.GetBytes($$"""{"type":"ping","id":{{j}}}""")));
                }

                await tcp.GetStream().WriteAsync(bytes.ToArray());
            }

            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g FROM generate_series(1, 100) g");
            for (var id = 1; id <= 100; id++)
            {
                var change = await bystander.ReceiveTypeAsync("change");
                change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
            }

            // The host still accepts and serves a well-behaved client.
            await using var late = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
            await late.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (101)");
            (await late.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32().Should().Be(101);
        }
        finally
        {
            hostile.ForEach(t => t.Dispose());
        }
    }

    [Fact]
    public async Task DirectSocketWritesOff_EverySocketStaysOnThePipe()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.DirectSocketWrites = false);
        using var paths = new WritePaths(host);

        using var tcp = new TcpClient();
        var reader = await RawClient.ConnectAsync(tcp, host.BaseAddress, table);
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("welcome", "no probe ping when direct writes are off");
        (await reader.NextTextAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1)");
        (await reader.NextTextAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        paths.Direct.Should().Be(0);
        paths.Pipe.Should().Be(0);
    }

    [Fact]
    public async Task OverTls_FramesGoThroughKestrel_NeverStraightToTheSocket()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        using var certificate = SelfSigned();
        await using var host = await WebHost.StartAsync(
            db.ConnectionString,
            PostgresFixture.NewName("ch"),
            [table],
            ws => ws.DirectSocketWrites = true,
            configureBuilder: b => b.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate))));
        using var paths = new WritePaths(host);
        host.BaseAddress.Scheme.Should().Be("https");

        await using var socket = await TestSocket.ConnectAsync(
            new Uri($"wss://{host.BaseAddress.Authority}/ws/changes/?tables={table}"),
            o => o.RemoteCertificateValidationCallback = (_, cert, _, _) => cert?.GetCertHashString() == certificate.GetCertHashString());
        await socket.ReceiveTypeAsync("subscribed");
        await socket.SendAsync("""{"type":"ping","id":1}""");
        await socket.ReceiveTypeAsync("pong");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, repeat('z', g * 10) FROM generate_series(1, 100) g");
        for (var id = 1; id <= 100; id++)
        {
            var change = await socket.ReceiveTypeAsync("change");
            change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
            change.GetProperty("data").GetProperty("body").GetString().Should().HaveLength(id * 10);
        }

        paths.Direct.Should().Be(0, "bytes written past TLS would reach the client unencrypted");
        paths.Pipe.Should().Be(0, "a TLS connection is never a candidate");
    }

    private static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The host's <c>pgnotify.websocket.write_paths</c> counts, by path.</summary>
    private sealed class WritePaths : IDisposable
    {
        private readonly ConcurrentDictionary<string, long> _counts = new();
        private readonly MeterListener _listener;

        public WritePaths(WebHost host)
        {
            var factory = host.App.Services.GetRequiredService<IMeterFactory>();
            _listener = new MeterListener
            {
                InstrumentPublished = (instrument, l) =>
                {
                    if (instrument.Meter.Name == "PgNotify" && ReferenceEquals(instrument.Meter.Scope, factory) && instrument.Name == "pgnotify.websocket.write_paths")
                    {
                        l.EnableMeasurementEvents(instrument);
                    }
                },
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "pgnotify.write.path")
                    {
                        _counts.AddOrUpdate((string)tag.Value!, value, (_, v) => v + value);
                    }
                }
            });
            _listener.Start();
        }

        public long Direct => _counts.GetValueOrDefault("direct");

        public long Pipe => _counts.GetValueOrDefault("pipe");

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>A WebSocket client over a bare TCP stream that parses every server frame itself.</summary>
    private sealed class RawClient(NetworkStream stream)
    {
        private readonly List<byte> _buffer = [];
        private readonly SemaphoreSlim _send = new(1, 1);

        public static byte[] Handshake(Uri baseAddress, string table) => Encoding.ASCII.GetBytes(
            $"GET /ws/changes/?tables={table} HTTP/1.1\r\nHost: {baseAddress.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {Convert.ToBase64String(Guid.NewGuid().ToByteArray())}\r\nSec-WebSocket-Version: 13\r\n\r\n");

        public static byte[] Masked(byte opcode, byte[] payload)
        {
            var header = payload.Length < 126 ? 2 : 4;
            var frame = new byte[header + 4 + payload.Length];
            frame[0] = (byte)(0x80 | opcode);
            if (payload.Length < 126)
            {
                frame[1] = (byte)(0x80 | payload.Length);
            }
            else
            {
                frame[1] = 0x80 | 126;
                BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
            }

            byte[] mask = [0x5a, 0x17, 0xc3, 0x08];
            mask.CopyTo(frame, header);
            for (var i = 0; i < payload.Length; i++)
            {
                frame[header + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
            }

            return frame;
        }

        /// <summary>Connects, sends the handshake and reads the 101 response (and nothing after it).</summary>
        public static async Task<RawClient> ConnectAsync(TcpClient tcp, Uri baseAddress, string table)
        {
            await tcp.ConnectAsync(baseAddress.Host, baseAddress.Port);
            var client = new RawClient(tcp.GetStream());
            await client._stream.WriteAsync(Handshake(baseAddress, table));
            while (IndexOfHeadersEnd(client._buffer) < 0)
            {
                await client.FillAsync();
            }

            var end = IndexOfHeadersEnd(client._buffer);
            Encoding.ASCII.GetString(client._buffer.GetRange(0, end).ToArray()).Should().StartWith("HTTP/1.1 101");
            client._buffer.RemoveRange(0, end + 4);
            return client;
        }

        private readonly NetworkStream _stream = stream;

        public async Task SendAsync(byte opcode, byte[] payload)
        {
            await _send.WaitAsync();
            try
            {
                await _stream.WriteAsync(Masked(opcode, payload));
            }
            finally
            {
                _send.Release();
            }
        }

        /// <summary>The next whole server frame; fails on a masked or otherwise malformed header.</summary>
        public async Task<(int Opcode, byte[] Payload)> NextAsync()
        {
            while (true)
            {
                if (_buffer.Count >= 2)
                {
                    (_buffer[0] & 0x80).Should().Be(0x80, "the server sends whole frames (FIN set)");
                    (_buffer[0] & 0x70).Should().Be(0, "no reserved bits");
                    (_buffer[1] & 0x80).Should().Be(0, "server frames are not masked");
                    var length = (long)(_buffer[1] & 0x7F);
                    var header = 2;
                    if (length == 126 && _buffer.Count >= 4)
                    {
                        length = BinaryPrimitives.ReadUInt16BigEndian(_buffer.GetRange(2, 2).ToArray());
                        header = 4;
                    }
                    else if (length == 127 && _buffer.Count >= 10)
                    {
                        length = (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.GetRange(2, 8).ToArray());
                        header = 10;
                    }
                    else if (length >= 126)
                    {
                        header = -1;
                    }

                    if (header > 0 && _buffer.Count >= header + length)
                    {
                        var opcode = _buffer[0] & 0x0F;
                        opcode.Should().BeOneOf([0x1, 0x8, 0x9, 0xA], "text and control frames only");
                        var payload = _buffer.GetRange(header, (int)length).ToArray();
                        _buffer.RemoveRange(0, header + (int)length);
                        return (opcode, payload);
                    }
                }

                await FillAsync();
            }
        }

        /// <summary>The next text frame as JSON, skipping pings (never answered) and pongs.</summary>
        public async Task<JsonElement> NextTextAsync()
        {
            while (true)
            {
                var frame = await NextAsync();
                if (frame.Opcode == 0x1)
                {
                    return JsonDocument.Parse(frame.Payload).RootElement;
                }

                frame.Opcode.Should().NotBe(0x8, "the server does not close a client that only stays silent");
            }
        }

        private async Task FillAsync()
        {
            var chunk = new byte[65536];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            var read = await _stream.ReadAsync(chunk, timeout.Token);
            read.Should().BePositive("the server keeps the connection open");
            _buffer.AddRange(chunk.AsSpan(0, read).ToArray());
        }

        private static int IndexOfHeadersEnd(List<byte> bytes)
        {
            for (var i = 0; i + 3 < bytes.Count; i++)
            {
                if (bytes[i] == '\r' && bytes[i + 1] == '\n' && bytes[i + 2] == '\r' && bytes[i + 3] == '\n')
                {
                    return i;
                }
            }

            return -1;
        }
    }
}
