using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace PgNotify.Bench;

/// <summary>
/// A WebSocket client that costs as little CPU as possible: a raw <see cref="Socket"/>, the HTTP upgrade written by
/// hand, unmasked server frames parsed in place, one receive loop with a pooled buffer, and only the two fields it
/// needs (<c>bench_seq</c>, <c>bench_sent</c>) read with <see cref="Utf8JsonReader"/>, no JSON DOM.
/// </summary>
internal sealed class LeanClient : IDisposable
{
    private static readonly byte[] SeqName = "bench_seq"u8.ToArray();
    private static readonly byte[] SentName = "bench_sent"u8.ToArray();
    private static readonly double TicksPerMicrosecond = Stopwatch.Frequency / 1_000_000.0;

    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    private readonly TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(8192);
    private byte[] _seen = [];
    private int _filled;
    private int[] _latencies = [];

    public long Received { get; private set; }

    public long Duplicates { get; private set; }

    public long Distinct { get; private set; }

    public long Resyncs { get; private set; }

    public long LastReceiveTimestamp { get; private set; }

    public int LatencyCount { get; private set; }

    public ReadOnlySpan<int> Latencies => _latencies.AsSpan(0, LatencyCount);

    public Task Subscribed => _subscribed.Task;

    public Task? Loop { get; private set; }

    /// <summary>Prepares the counters for a measurement of at most <paramref name="maxRows"/> rows.</summary>
    public void Arm(long maxRows, int expectedLatencies)
    {
        _seen = new byte[(maxRows + 7) / 8];
        _latencies = new int[Math.Max(16, expectedLatencies)];
        LatencyCount = 0;
        Received = Duplicates = Distinct = Resyncs = 0;
    }

    public async Task ConnectAsync(IPEndPoint endPoint, string path, CancellationToken cancellationToken)
    {
        await _socket.ConnectAsync(endPoint, cancellationToken);
        await _socket.SendAsync(HandshakeRequest(endPoint, path), SocketFlags.None, cancellationToken);
        var filled = 0;
        int end;
        while ((end = HandshakeEnd(filled)) < 0)
        {
            filled += await _socket.ReceiveAsync(_buffer.AsMemory(filled), SocketFlags.None, cancellationToken) is > 0 and var n
                ? n
                : throw new IOException("closed during the handshake");
        }

        TakeHandshakeAnswer(filled, end);
        Loop = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>The socket's file descriptor, for <see cref="EpollLoop"/>.</summary>
    public int Fd => (int)_socket.Handle;

    /// <summary>
    /// The handshake with blocking calls, for clients that <see cref="EpollLoop"/> will read: the socket never touches
    /// .NET's async engine. Frames that came with the handshake's answer are handled at once.
    /// </summary>
    public void Connect(IPEndPoint endPoint, string path)
    {
        _socket.Connect(endPoint);
        _socket.Send(HandshakeRequest(endPoint, path));
        var filled = 0;
        int end;
        while ((end = HandshakeEnd(filled)) < 0)
        {
            filled += _socket.Receive(_buffer.AsSpan(filled)) is > 0 and var n ? n : throw new IOException("closed during the handshake");
        }

        TakeHandshakeAnswer(filled, end);
        _socket.Blocking = false;
        Consume();
    }

    /// <summary>Reads until the socket has nothing more (non-blocking); false once it is closed.</summary>
    public bool ReceiveAvailable()
    {
        while (true)
        {
            GrowIfFull();
            var n = _socket.Receive(_buffer.AsSpan(_filled), SocketFlags.None, out var error);
            if (error == SocketError.WouldBlock)
            {
                return true;
            }

            if (error != SocketError.Success || n == 0 || !Take(n))
            {
                _subscribed.TrySetException(new IOException("the socket closed before it was subscribed"));
                return false;
            }
        }
    }

    private static byte[] HandshakeRequest(IPEndPoint endPoint, string path) => Encoding.ASCII.GetBytes(
        $"GET {path} HTTP/1.1\r\nHost: {endPoint}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");

    /// <summary>Where the handshake's answer ends (its blank line) in the first <paramref name="filled"/> bytes, or -1.</summary>
    private int HandshakeEnd(int filled) => _buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);

    /// <summary>Checks the answer is 101 and keeps what follows it (the first frames) at the start of the buffer.</summary>
    private void TakeHandshakeAnswer(int filled, int end)
    {
        if (!_buffer.AsSpan(0, filled).StartsWith("HTTP/1.1 101"u8))
        {
            throw new IOException("handshake refused: " + Encoding.ASCII.GetString(_buffer, 0, Math.Min(filled, 80)).Split('\r')[0]);
        }

        _filled = filled - (end + 4);
        _buffer.AsSpan(end + 4, _filled).CopyTo(_buffer);
    }

    private async Task ReceiveLoopAsync()
    {
        try
        {
            if (!Consume())
            {
                return;
            }

            while (true)
            {
                GrowIfFull();
                var n = await _socket.ReceiveAsync(_buffer.AsMemory(_filled), SocketFlags.None);
                if (n == 0 || !Take(n))
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            _subscribed.TrySetException(new IOException("the socket closed before it was subscribed"));
        }
    }

    /// <summary><paramref name="n"/> more bytes are in the buffer: handles the whole frames. False on a close frame.</summary>
    private bool Take(int n)
    {
        _filled += n;
        return Consume();
    }

    /// <summary>Handles every whole frame in the buffer and keeps the rest; makes room for a frame larger than it. False on a close frame.</summary>
    private bool Consume()
    {
        var consumed = ParseFrames(_filled, out var needed);
        if (consumed < 0)
        {
            return false;
        }

        _filled -= consumed;
        if (consumed > 0 && _filled > 0)
        {
            _buffer.AsSpan(consumed, _filled).CopyTo(_buffer);
        }

        if (needed > _buffer.Length)
        {
            Grow(needed);
        }

        return true;
    }

    private void GrowIfFull()
    {
        if (_filled == _buffer.Length)
        {
            Grow(_buffer.Length * 2);
        }
    }

    private void Grow(int size)
    {
        var larger = ArrayPool<byte>.Shared.Rent(size);
        _buffer.AsSpan(0, _filled).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }

    /// <summary>Handles every whole frame in the buffer; returns the bytes consumed, or -1 on a close frame.</summary>
    private int ParseFrames(int filled, out int needed)
    {
        needed = 0;
        var offset = 0;
        while (filled - offset >= 2)
        {
            var span = _buffer.AsSpan(offset, filled - offset);
            var opcode = span[0] & 0x0F;
            long length = span[1] & 0x7F;
            var header = 2;
            if (length == 126)
            {
                if (span.Length < 4)
                {
                    break;
                }

                length = BinaryPrimitives.ReadUInt16BigEndian(span[2..]);
                header = 4;
            }
            else if (length == 127)
            {
                if (span.Length < 10)
                {
                    break;
                }

                length = (long)BinaryPrimitives.ReadUInt64BigEndian(span[2..]);
                header = 10;
            }

            if (span.Length < header + length)
            {
                needed = (int)(header + length);
                break;
            }

            var payload = span.Slice(header, (int)length);
            switch (opcode)
            {
                case 0x1: // text (the servers never fragment)
                    OnText(payload);
                    break;
                case 0x8: // close
                    return -1;
                case 0x9: // ping: answer with a pong (masked with a zero key, as RFC 6455 allows)
                    Pong(payload);
                    break;
            }

            offset += header + (int)length;
        }

        return offset;
    }

    private void OnText(ReadOnlySpan<byte> payload)
    {
        var now = Stopwatch.GetTimestamp();
        long seq = -1;
        long sent = 0;
        var reader = new Utf8JsonReader(payload);
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName)
            {
                continue;
            }

            if (reader.CurrentDepth == 1 && reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                if (reader.ValueTextEquals("subscribed"u8))
                {
                    _subscribed.TrySetResult();
                    return;
                }

                if (reader.ValueTextEquals("resync"u8))
                {
                    Resyncs++;
                    return;
                }
            }
            else if (reader.ValueTextEquals(SeqName))
            {
                reader.Read();
                seq = reader.GetInt64();
            }
            else if (reader.ValueTextEquals(SentName))
            {
                reader.Read();
                sent = reader.GetInt64();
            }
            else if (reader.CurrentDepth == 1 && (reader.ValueTextEquals("data"u8) || reader.ValueTextEquals("old"u8)))
            {
                continue; // descend into the row
            }
            else if (reader.CurrentDepth > 1 && seq >= 0 && sent != 0)
            {
                break; // both found: skip the rest (the 100 KB pad)
            }
            else
            {
                reader.Read();
                reader.TrySkip();
            }
        }

        if (seq < 0)
        {
            return;
        }

        Received++;
        LastReceiveTimestamp = now;
        if ((ulong)seq >= (ulong)_seen.Length * 8)
        {
            return;
        }

        ref var cell = ref _seen[seq >> 3];
        var bit = (byte)(1 << (int)(seq & 7));
        if ((cell & bit) != 0)
        {
            Duplicates++;
            return;
        }

        cell |= bit;
        Distinct++;
        if (LatencyCount == _latencies.Length)
        {
            Array.Resize(ref _latencies, _latencies.Length * 2);
        }

        _latencies[LatencyCount++] = (int)Math.Min(int.MaxValue, (now - sent) / TicksPerMicrosecond);
    }

    private void Pong(ReadOnlySpan<byte> payload)
    {
        var frame = new byte[6 + payload.Length];
        frame[0] = 0x8A;
        frame[1] = (byte)(0x80 | payload.Length);
        payload.CopyTo(frame.AsSpan(6));
        _socket.Send(frame);
    }

    public void Dispose()
    {
        _socket.Dispose();
    }
}
