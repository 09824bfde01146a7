using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The upgraded connection's stream, between the server and the runtime's WebSocket. Reads pass through. Writes are
/// serialized, so that the WebSocket's own frames (pongs, keep-alive pings, close) and
/// <see cref="WriteTextFramesAsync"/> (several whole text frames in one write to the connection: one flush, usually
/// one <c>send</c>) never interleave inside a frame.
/// </summary>
/// <remarks>
/// Server frames are unmasked, so a text frame is a 2-to-10-byte header and the payload as is: the same payload bytes
/// serve every socket. The runtime's WebSocket writes each of its frames with one call (the server side never
/// fragments what it sends here), which is what makes the two writers safe to interleave at frame boundaries.
/// It is also the socket's <see cref="IFrameSink"/> (one object fewer per socket than a sink of its own). Writes past
/// Kestrel's pipe, straight to the connection's socket, are in FrameStream.Direct.cs.
/// </remarks>
internal sealed partial class FrameStream : Stream, IFrameSink
{
    private const byte FinText = 0x81;
    private const byte FinClose = 0x88;
    private readonly Stream _inner;
    // Not disposed with the stream: a write still waiting on it when the socket is aborted must fail on the inner
    // stream (an error the session handles), not on a disposed semaphore. It holds no wait handle.
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private volatile bool _closeWritten;

    public FrameStream(Stream inner) => _inner = inner;

    private HttpContext? _connection;
    private WebSocket? _socket;

    /// <summary>
    /// Disposing the server's upgraded stream does not end the connection (a pending read stays pending), so the
    /// WebSocket's abort, e.g. after a keep-alive timeout, is passed on to <paramref name="context"/> when the stream is
    /// disposed. Only an abort with no close frame sent ends the connection at once; after a close frame, including
    /// one the runtime sent itself before aborting (1007 for invalid UTF-8), the connection ends gracefully with the
    /// request, so the client reads that frame. (Two fields rather than a callback: less held per socket.)
    /// </summary>
    public void EndConnectionOnAbort(HttpContext context, WebSocket socket)
    {
        _connection = context;
        _socket = socket;
    }

    private void OnDisposing()
    {
        if (_socket is { State: WebSocketState.Aborted } && !_closeWritten)
        {
            _connection?.Abort();
        }
    }

    bool IFrameSink.WritesBatches => true;

    async ValueTask IFrameSink.WriteAsync(IReadOnlyList<byte[]> frames)
    {
        if (!await WriteTextFramesAsync(frames).ConfigureAwait(false))
        {
            // The runtime's WebSocket closed its side itself (e.g. 1007 for invalid UTF-8 from the client).
            throw new WebSocketException(WebSocketError.InvalidState, "The WebSocket has sent its close frame.");
        }
    }

    Task IFrameSink.CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken) =>
        SocketFrameSink.CloseAsync(_socket!, status, description, cancellationToken);

    /// <summary>True once the WebSocket has written its close frame: nothing may follow it.</summary>
    public bool CloseWritten => _closeWritten;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>Writes <paramref name="payloads"/> as whole text frames, all in one write to the connection.</summary>
    /// <returns>False when the WebSocket has closed its side already, so nothing was written.</returns>
    public async ValueTask<bool> WriteTextFramesAsync(IReadOnlyList<byte[]> payloads)
    {
        var total = 0;
        foreach (var payload in payloads)
        {
            total += HeaderLength(payload.Length) + payload.Length;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            var offset = 0;
            foreach (var payload in payloads)
            {
                offset += WriteHeader(buffer.AsSpan(offset), payload.Length);
                payload.CopyTo(buffer.AsSpan(offset));
                offset += payload.Length;
            }

            if (Volatile.Read(ref _mode) == ModeWaiting)
            {
                await AwaitClientAsync().ConfigureAwait(false);
            }

            await _writeLock.WaitAsync().ConfigureAwait(false);
            try
            {
                if (_closeWritten)
                {
                    return false;
                }

                await WriteOutAsync(buffer.AsMemory(0, offset), default).ConfigureAwait(false);
                return true;
            }
            finally
            {
                _writeLock.Release();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!buffer.IsEmpty && buffer.Span[0] == FinClose)
            {
                _closeWritten = true;
            }

            await WriteOutAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Volatile.Read(ref _mode) == ModeWaiting ? ReadThenCheckAsync(buffer, cancellationToken) : _inner.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = _inner.Read(buffer, offset, count);
        if (read > 0 && Volatile.Read(ref _mode) == ModeWaiting)
        {
            ClientSpoke();
        }

        return read;
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override void Flush() => _inner.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    internal static int HeaderLength(int payloadLength) => payloadLength switch
    {
        < 126 => 2,
        <= ushort.MaxValue => 4,
        _ => 10,
    };

    internal static int WriteHeader(Span<byte> destination, int payloadLength)
    {
        destination[0] = FinText;
        if (payloadLength < 126)
        {
            destination[1] = (byte)payloadLength;
            return 2;
        }

        if (payloadLength <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payloadLength);
            return 4;
        }

        destination[1] = 127;
        BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payloadLength);
        return 10;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            OnDisposing();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        OnDisposing();
        await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
