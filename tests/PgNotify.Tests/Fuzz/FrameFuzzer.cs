using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// Drives many fuzzing sockets against one host until they have sent a number of frames between them. Most are real
/// <see cref="ClientWebSocket"/>s sending generated and mutated messages (text, binary, fragments, empty, floods);
/// some speak raw RFC 6455 over TCP to send what a well-behaved client library cannot (unmasked frames, reserved
/// opcodes and bits, interleaved fragments, oversized control frames, lying lengths). A socket the server closes
/// connects again. Everything the server answers must be valid JSON.
/// </summary>
public sealed class FrameFuzzer(Uri socketUri, string table, FuzzSettings settings, FuzzEvidence evidence)
{
    /// <summary>Frames are read as a browser's JSON.parse reads them: rows may nest far past 64 levels, and arrive whole.</summary>
    private static readonly JsonDocumentOptions AnyDepth = new() { MaxDepth = int.MaxValue };

    private const int RawSockets = 5;
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(10);
    private long _sent;
    private long _connections;
    private long _answers;
    private readonly ConcurrentDictionary<string, long> _closes = new();
    private readonly ConcurrentDictionary<string, long> _answerTypes = new();
    private readonly ConcurrentDictionary<string, long> _kinds = new();

    public long FramesSent => Interlocked.Read(ref _sent);

    public long Connections => Interlocked.Read(ref _connections);

    public long Answers => Interlocked.Read(ref _answers);

    public IReadOnlyDictionary<string, long> Closes => _closes;

    public IReadOnlyDictionary<string, long> AnswerTypes => _answerTypes;

    public IReadOnlyDictionary<string, long> FrameKinds => _kinds;

    /// <summary>
    /// Awaited by each socket once the frame budget is spent, before it closes: the subscriptions the fuzz made stay in
    /// place while more real changes go through them.
    /// </summary>
    public Func<Task>? HoldBeforeClose { get; init; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var sockets = Enumerable.Range(0, settings.Sockets)
            .Select(i => Task.Run(() => i < RawSockets ? RunRawAsync(i, cancellationToken) : RunClientAsync(i, cancellationToken), CancellationToken.None));
        await Task.WhenAll(sockets);
    }

    private bool BudgetLeft => Interlocked.Read(ref _sent) < settings.Frames;

    private void Count(string kind, int frames = 1)
    {
        Interlocked.Add(ref _sent, frames);
        _kinds.AddOrUpdate(kind, frames, (_, n) => n + frames);
    }

    private async Task RunClientAsync(int index, CancellationToken cancellationToken)
    {
        var fuzz = new JsonFuzz(settings.SeedFor(1_000 + index));
        var reads = index % 10 != 9; // every tenth socket never reads what the server sends
        var frame = 0;
        while (BudgetLeft && !cancellationToken.IsCancellationRequested)
        {
            using var socket = new ClientWebSocket();
            try
            {
                using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    connectTimeout.CancelAfter(TimeSpan.FromSeconds(15));
                    await socket.ConnectAsync(socketUri, connectTimeout.Token);
                }

                Interlocked.Increment(ref _connections);
                var flow = new Flow();
                using var closed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var receiving = reads ? ReceiveAsync(socket, index, flow, closed) : Task.CompletedTask;
                while (BudgetLeft && socket.State == WebSocketState.Open && !closed.IsCancellationRequested)
                {
                    if (reads)
                    {
                        await flow.WaitForWindowAsync();
                    }

                    // A send the server no longer reads (it closed us) is given up as soon as its close arrives.
                    await SendOneAsync(socket, fuzz, index, frame++, flow, closed.Token);
                }

                if (HoldBeforeClose is { } hold && !BudgetLeft)
                {
                    await hold();
                }

                if (socket.State == WebSocketState.Open)
                {
                    using var closeTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, closeTimeout.Token);
                }

                await receiving.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or TimeoutException or ObjectDisposedException)
            {
                // The server closed or reset the socket (1007, 1008, 1009...), or it stopped reading us: connect again.
                _closes.AddOrUpdate(socket.CloseStatus?.ToString() ?? ex.GetType().Name, 1, (_, n) => n + 1);
                socket.Abort();
            }
        }
    }

    private async Task SendOneAsync(ClientWebSocket socket, JsonFuzz fuzz, int index, int frame, Flow flow, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(SendTimeout);
        var token = timeout.Token;
        var roll = fuzz.Next(100);
        if (roll < 8)
        {
            // A fragmented message: a request cut into pieces sent with EndOfMessage = false.
            var bytes = Encoding.UTF8.GetBytes(fuzz.Request(table));
            var pieces = fuzz.Next(2, 8);
            evidence.Input($"s{index}#{frame} fragmented x{pieces}", bytes);
            for (var i = 0; i < pieces; i++)
            {
                var start = bytes.Length * i / pieces;
                var end = bytes.Length * (i + 1) / pieces;
                await socket.SendAsync(bytes.AsMemory(start, end - start), WebSocketMessageType.Text, i == pieces - 1, token);
                Count("fragment");
            }

            flow.Sent();
            return;
        }

        if (roll < 9 || (roll < 10 && fuzz.Chance(0.3)))
        {
            // A flood: requests back to back, past the rate limit; now and then long enough to be closed for it.
            var count = fuzz.Chance(0.02) ? fuzz.Next(1_000, Math.Max(1_001, Math.Min(12_000, settings.Frames / 20))) : fuzz.Next(10, 100);
            var ping = "{\"type\":\"ping\"}"u8.ToArray();
            evidence.Input($"s{index}#{frame} flood x{count}", ping);
            for (var i = 0; i < count && BudgetLeft && socket.State == WebSocketState.Open; i++)
            {
                await socket.SendAsync(ping, WebSocketMessageType.Text, true, token);
                Count("flood");
            }

            return;
        }

        var (kind, payload, type) = roll switch
        {
            < 45 => ("request", Encoding.UTF8.GetBytes(fuzz.Request(table)), WebSocketMessageType.Text),
            < 57 => ("mutated", Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(fuzz.Mutate(Encoding.UTF8.GetBytes(fuzz.Request(table))))), WebSocketMessageType.Text),
            < 60 => ("mutated-bytes", fuzz.Mutate(Encoding.UTF8.GetBytes(fuzz.Request(table))), WebSocketMessageType.Text),
            < 67 => ("any", Encoding.UTF8.GetBytes(fuzz.Any(5)), WebSocketMessageType.Text),
            < 72 => ("nested", Encoding.UTF8.GetBytes(fuzz.Nested(fuzz.Depth())), WebSocketMessageType.Text),
            < 75 => ("huge-string", Encoding.UTF8.GetBytes("{\"type\":\"ping\",\"pad\":" + fuzz.StringLiteral(20_000) + "}"), WebSocketMessageType.Text),
            < 77 => ("invalid-utf8", fuzz.InvalidUtf8(), WebSocketMessageType.Text),
            < 82 => ("binary", RandomBytes(fuzz, fuzz.Next(0, 600)), WebSocketMessageType.Binary),
            < 85 => ("empty", [], fuzz.Chance(0.5) ? WebSocketMessageType.Text : WebSocketMessageType.Binary),
            < 95 => ("subscribe", Encoding.UTF8.GetBytes($"{{\"type\":\"subscribe\",\"id\":{frame},\"tables\":[\"{table}\"],\"filter\":{fuzz.Filter()}}}"), WebSocketMessageType.Text),
            < 97 => ("unsubscribe", Encoding.UTF8.GetBytes($"{{\"type\":\"unsubscribe\",\"tables\":[\"{table}\"]}}"), WebSocketMessageType.Text),
            _ => ("ping", Encoding.UTF8.GetBytes($"{{\"type\":\"ping\",\"id\":{frame}}}"), WebSocketMessageType.Text),
        };
        evidence.Input($"s{index}#{frame} {kind} {type}", payload);
        await socket.SendAsync(payload, type, true, token);
        Count(kind);
        flow.Sent();
    }

    private async Task ReceiveAsync(ClientWebSocket socket, int index, Flow flow, CancellationTokenSource closed)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var result = await socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _closes.AddOrUpdate(socket.CloseStatus?.ToString() ?? "close", 1, (_, n) => n + 1);
                    try
                    {
                        await closed.CancelAsync();
                    }
                    catch (ObjectDisposedException)
                    {
                        // The send side has moved on to a new socket already.
                    }

                    return;
                }

                length += result.Count;
                if (!result.EndOfMessage)
                {
                    continue;
                }

                Interlocked.Increment(ref _answers);
                flow.Answered();
                try
                {
                    using var answer = JsonDocument.Parse(buffer.AsMemory(0, length), AnyDepth);
                    if (answer.RootElement.ValueKind != JsonValueKind.Object || !answer.RootElement.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                    {
                        evidence.Violation($"socket {index}: an answer without a type: {Preview(buffer, length)}");
                    }
                    else
                    {
                        var key = type.GetString() + (answer.RootElement.TryGetProperty("code", out var code) ? ":" + code.GetString() : "");
                        _answerTypes.AddOrUpdate(key, 1, (_, n) => n + 1);
                    }
                }
                catch (JsonException ex)
                {
                    evidence.Violation($"socket {index}: the server sent a frame that is not JSON ({ex.Message}): {Preview(buffer, length)}");
                }

                length = 0;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // Closed under us: the send side connects again.
            _closes.AddOrUpdate("receive " + ex.GetType().Name, 1, (_, n) => n + 1);
            try
            {
                await closed.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The send side has moved on to a new socket already.
            }
        }
    }

    /// <summary>
    /// Keeps a reading socket's requests at most a window ahead of the answers, as a client that reads does: one that
    /// pipelines without end is closed for not reading (1008), and the rest of its frames would never be parsed. An
    /// answer that never comes (a refused or ignored request) holds the socket back at most half a second.
    /// </summary>
    private sealed class Flow
    {
        private const int Window = 32;
        private readonly SemaphoreSlim _answered = new(0);
        private int _inFlight;

        public void Sent() => Interlocked.Increment(ref _inFlight);

        public void Answered()
        {
            Interlocked.Decrement(ref _inFlight);
            _answered.Release();
        }

        public async Task WaitForWindowAsync()
        {
            while (Volatile.Read(ref _inFlight) > Window)
            {
                if (!await _answered.WaitAsync(TimeSpan.FromMilliseconds(500)))
                {
                    Interlocked.Exchange(ref _inFlight, 0);
                    return;
                }
            }
        }
    }

    // ---- Raw RFC 6455 over TCP: what ClientWebSocket will not send. ----

    private async Task RunRawAsync(int index, CancellationToken cancellationToken)
    {
        var fuzz = new JsonFuzz(settings.SeedFor(2_000 + index));
        var frame = 0;
        while (BudgetLeft && !cancellationToken.IsCancellationRequested)
        {
            using var client = new TcpClient { NoDelay = true };
            try
            {
                await client.ConnectAsync(socketUri.Host, socketUri.Port, cancellationToken);
                var stream = client.GetStream();
                if (!await HandshakeAsync(stream, cancellationToken))
                {
                    evidence.Violation($"raw socket {index}: the WebSocket handshake was refused");
                    return;
                }

                Interlocked.Increment(ref _connections);
                var draining = DrainAsync(stream, index);
                for (var i = fuzz.Next(1, 40); i > 0 && BudgetLeft && !draining.IsCompleted; i--)
                {
                    var bytes = RawFrame(fuzz, out var kind);
                    evidence.Input($"raw{index}#{frame++} {kind}", bytes);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(SendTimeout);
                    await stream.WriteAsync(bytes, timeout.Token);
                    Count("raw " + kind);
                }

                client.Client.Shutdown(SocketShutdown.Send);
                await draining.WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or TimeoutException or ObjectDisposedException)
            {
                _closes.AddOrUpdate("raw " + ex.GetType().Name, 1, (_, n) => n + 1);
            }
        }
    }

    private async Task<bool> HandshakeAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var request = $"GET {socketUri.PathAndQuery} HTTP/1.1\r\nHost: {socketUri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {Convert.ToBase64String(Guid.NewGuid().ToByteArray())}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        var head = new List<byte>();
        var one = new byte[1];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        while (head.Count < 8192)
        {
            if (await stream.ReadAsync(one, timeout.Token) == 0)
            {
                return false;
            }

            head.Add(one[0]);
            if (head.Count >= 4 && head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n')
            {
                return Encoding.ASCII.GetString([.. head]).StartsWith("HTTP/1.1 101", StringComparison.Ordinal);
            }
        }

        return false;
    }

    /// <summary>Reads the server's frames until it hangs up; answers its close frame, as RFC 6455 asks.</summary>
    private async Task DrainAsync(NetworkStream stream, int index)
    {
        var pending = new List<byte>();
        var buffer = new byte[16 * 1024];
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                pending.AddRange(buffer.AsSpan(0, read));
                while (TryTakeServerFrame(pending, out var opcode, out var payload))
                {
                    if (opcode == 0x8)
                    {
                        _closes.AddOrUpdate("raw close " + (payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(payload) : 1005), 1, (_, n) => n + 1);
                        await stream.WriteAsync(Frame(true, 0, 0x8, payload.Length >= 2 ? payload[..2] : [], mask: true), timeout.Token);
                    }
                    else if (opcode == 0x1)
                    {
                        try
                        {
                            using var _ = JsonDocument.Parse(payload, AnyDepth);
                        }
                        catch (JsonException ex)
                        {
                            evidence.Violation($"raw socket {index}: the server sent a frame that is not JSON ({ex.Message})");
                        }
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    /// <summary>Takes one whole unmasked server frame off the front of <paramref name="pending"/>, if there is one.</summary>
    private static bool TryTakeServerFrame(List<byte> pending, out int opcode, out byte[] payload)
    {
        opcode = 0;
        payload = [];
        if (pending.Count < 2)
        {
            return false;
        }

        var header = 2;
        long length = pending[1] & 0x7F;
        if (length == 126)
        {
            header = 4;
            length = pending.Count >= 4 ? (pending[2] << 8) | pending[3] : long.MaxValue;
        }
        else if (length == 127)
        {
            header = 10;
            length = pending.Count >= 10 ? (long)BinaryPrimitives.ReadUInt64BigEndian([.. pending.GetRange(2, 8)]) : long.MaxValue;
        }

        if (pending.Count < header + length)
        {
            return false;
        }

        opcode = pending[0] & 0x0F;
        payload = [.. pending.GetRange(header, (int)length)];
        pending.RemoveRange(0, header + (int)length);
        return true;
    }

    private byte[] RawFrame(JsonFuzz fuzz, out string kind)
    {
        var request = Encoding.UTF8.GetBytes(fuzz.Request(table));
        switch (fuzz.Next(16))
        {
            case 0 or 1 or 2:
                kind = "text";
                return Frame(true, 0, 0x1, request, mask: true);
            case 3:
                kind = "unmasked";
                return Frame(true, 0, 0x1, request, mask: false);
            case 4:
                kind = "reserved-opcode";
                return Frame(true, 0, fuzz.Pick(new byte[] { 0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF }), request, mask: true);
            case 5:
                kind = "rsv-bits";
                return Frame(true, (byte)fuzz.Next(1, 8), 0x1, request, mask: true);
            case 6:
                kind = "continuation-without-start";
                return Frame(fuzz.Chance(0.5), 0, 0x0, request, mask: true);
            case 7:
                // Interleaved: a new data message starts while a fragmented one is still open.
                kind = "interleaved";
                return [.. Frame(false, 0, 0x1, request[..(request.Length / 2)], mask: true), .. Frame(true, 0, fuzz.Chance(0.5) ? (byte)0x1 : (byte)0x2, request, mask: true)];
            case 8:
                kind = "fragmented-control";
                return Frame(false, 0, 0x9, "ping"u8.ToArray(), mask: true);
            case 9:
                kind = "oversized-control";
                return Frame(true, 0, fuzz.Chance(0.5) ? (byte)0x9 : (byte)0xA, RandomBytes(fuzz, fuzz.Next(126, 2_000)), mask: true);
            case 10:
                kind = "lying-length";
                return LyingLength(fuzz);
            case 11:
                kind = "ping-pong";
                return Frame(true, 0, fuzz.Chance(0.5) ? (byte)0x9 : (byte)0xA, RandomBytes(fuzz, fuzz.Next(0, 125)), mask: true);
            case 12:
                kind = "bad-close";
                var code = fuzz.Pick(new ushort[] { 0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535 });
                byte[] close = fuzz.Chance(0.3) ? [0x03] : [(byte)(code >> 8), (byte)code, 0xC3, 0x28];
                return Frame(true, 0, 0x8, close, mask: true);
            case 13:
                kind = "fragmented-interleaved-ping";
                return [.. Frame(false, 0, 0x1, request[..(request.Length / 3)], mask: true), .. Frame(true, 0, 0x9, "p"u8.ToArray(), mask: true),
                    .. Frame(true, 0, 0x0, request[(request.Length / 3)..], mask: true)];
            case 14:
                kind = "random-bytes";
                return RandomBytes(fuzz, fuzz.Next(1, 200));
            default:
                kind = "truncated";
                var whole = Frame(true, 0, 0x1, request, mask: true);
                return whole[..fuzz.Next(1, whole.Length)];
        }
    }

    private static byte[] LyingLength(JsonFuzz fuzz)
    {
        // A header that announces more (or far more) than follows, or a non-minimal length encoding.
        var header = new List<byte> { 0x81 };
        switch (fuzz.Next(3))
        {
            case 0:
                header.Add(0x80 | 127);
                var length = new byte[8];
                BinaryPrimitives.WriteUInt64BigEndian(length, fuzz.Chance(0.5) ? ulong.MaxValue >> 1 : (ulong)fuzz.Next(17_000, int.MaxValue));
                header.AddRange(length);
                break;
            case 1:
                header.Add(0x80 | 126);
                header.AddRange(new byte[] { 0x00, 0x05 }); // non-minimal: 5 fits in the first byte
                break;
            default:
                header.Add(0x80 | 127);
                header.AddRange(new byte[] { 0x80, 0, 0, 0, 0, 0, 0, 0 }); // the most significant bit set: invalid
                break;
        }

        header.AddRange(new byte[] { 1, 2, 3, 4 }); // mask key
        header.AddRange("{\"type\":"u8.ToArray());
        return [.. header];
    }

    private static byte[] Frame(bool fin, byte rsv, byte opcode, byte[] payload, bool mask)
    {
        var frame = new List<byte>(payload.Length + 14) { (byte)((fin ? 0x80 : 0) | (rsv << 4) | opcode) };
        var maskBit = mask ? 0x80 : 0;
        if (payload.Length < 126)
        {
            frame.Add((byte)(maskBit | payload.Length));
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            frame.Add((byte)(maskBit | 126));
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }
        else
        {
            frame.Add((byte)(maskBit | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload.Length);
            frame.AddRange(length);
        }

        byte[] key = [0x12, 0x34, 0x56, 0x78];
        if (mask)
        {
            frame.AddRange(key);
        }

        for (var i = 0; i < payload.Length; i++)
        {
            frame.Add(mask ? (byte)(payload[i] ^ key[i % 4]) : payload[i]);
        }

        return [.. frame];
    }

    private static byte[] RandomBytes(JsonFuzz fuzz, int count)
    {
        var bytes = new byte[count];
        fuzz.Random.NextBytes(bytes);
        return bytes;
    }

    private static string Preview(byte[] buffer, int length) =>
        Encoding.UTF8.GetString(buffer, 0, Math.Min(length, 300));
}
