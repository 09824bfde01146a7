using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

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
/// It is also the socket's <see cref="IFrameSink"/> (one object fewer per socket than a sink of its own).
/// <para>
/// Direct writes (<see cref="WriteDirectTo"/>): on a plain TCP connection, once it is safe, every write goes straight to
/// the connection's <see cref="Socket"/> from the writing thread instead of through Kestrel's output pipe, whose I/O
/// thread would make the <c>send</c> after a wake-up. It is safe once nothing written through the pipe can still be
/// waiting there: the only bytes written through it before the switch are the handshake's 101 response and, possibly,
/// a few small control frames. The switch happens when the client sends its first bytes, which a client does only
/// after it has read the 101 (RFC 6455 section 4.1); the first change or reply frame waits for that, and asks for it
/// with a ping if the client has said nothing yet. A control frame still in the pipe at the switch may then reach the
/// client after a later frame, which the protocol allows (control frames may come between any two frames). A client
/// that sends before it has read the 101 (against the RFC), or that answers nothing within
/// <see cref="ProofTimeout"/>, only affects its own connection: the former may see its own frames before the 101, the
/// latter gets every frame through the pipe as before.
/// </para>
/// </remarks>
internal sealed class FrameStream : Stream, IFrameSink
{
    private const byte FinText = 0x81;
    private const byte FinClose = 0x88;
    private const int ModePipe = 0;
    private const int ModeWaiting = 1;
    private const int ModeDirect = 2;

    /// <summary>How long the first write waits for the client's first bytes before it settles for the pipe.</summary>
    internal static readonly TimeSpan ProofTimeout = TimeSpan.FromSeconds(2);

    // An unmasked ping with no payload: any RFC 6455 client answers it with a pong.
    private static readonly byte[] ProbePing = [0x89, 0x00];
    private readonly Stream _inner;
    // Not disposed with the stream: a write still waiting on it when the socket is aborted must fail on the inner
    // stream (an error the session handles), not on a disposed semaphore. It holds no wait handle.
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private volatile bool _closeWritten;

    public FrameStream(Stream inner) => _inner = inner;

    private HttpContext? _connection;
    private WebSocket? _socket;
    private Socket? _direct;
    private int _mode;
    private TaskCompletionSource? _spoke;

    /// <summary>
    /// Lets this stream write straight to <paramref name="socket"/>, the connection's own socket, as soon as the client
    /// has sent something (see the remarks). Only for a plain TCP connection: nothing may sit between the socket and
    /// the upgraded stream that changes bytes (TLS, a connection middleware).
    /// </summary>
    public void WriteDirectTo(Socket socket)
    {
        _direct = socket;
        _mode = ModeWaiting;
    }

    /// <summary>True once writes go straight to the connection's socket.</summary>
    public bool WritesDirect => Volatile.Read(ref _mode) == ModeDirect;

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

    private ValueTask WriteOutAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        Volatile.Read(ref _mode) == ModeDirect ? SendDirectAsync(buffer, cancellationToken) : _inner.WriteAsync(buffer, cancellationToken);

    private async ValueTask SendDirectAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            // A send on a stream socket completes when all of it is sent; the loop only guards against a short count.
            while (!buffer.IsEmpty)
            {
                var sent = await _direct!.SendAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                buffer = buffer[sent..];
            }
        }
        catch (SocketException ex)
        {
            // What a write through the pipe throws when the connection is gone, so the session handles both alike.
            throw new IOException(ex.Message, ex);
        }
    }

    /// <summary>
    /// Waits, before the first frame this stream writes itself, until the client has sent something (so the 101 has left
    /// the pipe), asking for it with a ping; after <see cref="ProofTimeout"/> without an answer, writes stay on the pipe.
    /// </summary>
    private async ValueTask AwaitClientAsync()
    {
        var spoke = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _spoke, spoke);
        if (Volatile.Read(ref _mode) != ModeWaiting)
        {
            return;
        }

        await _writeLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_closeWritten)
            {
                // Nothing more is written anyway.
                return;
            }

            if (Volatile.Read(ref _mode) == ModeWaiting)
            {
                await _inner.WriteAsync(ProbePing).ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
        }

        try
        {
            await spoke.Task.WaitAsync(ProofTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            if (Interlocked.CompareExchange(ref _mode, ModePipe, ModeWaiting) == ModeWaiting)
            {
                CountWritePath("pipe");
            }
        }
        finally
        {
            Volatile.Write(ref _spoke, null);
        }
    }

    /// <summary>The client has sent bytes: from now on, writes go straight to the socket.</summary>
    private void ClientSpoke()
    {
        if (Interlocked.CompareExchange(ref _mode, ModeDirect, ModeWaiting) == ModeWaiting)
        {
            CountWritePath("direct");
            Interlocked.Exchange(ref _spoke, null)?.TrySetResult();
        }
    }

    private void CountWritePath(string path) =>
        _connection?.RequestServices?.GetService<WebSocketMetrics>()?.WritePathChosen(path);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Volatile.Read(ref _mode) == ModeWaiting ? ReadThenCheckAsync(buffer, cancellationToken) : _inner.ReadAsync(buffer, cancellationToken);

    private async ValueTask<int> ReadThenCheckAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (read > 0)
        {
            ClientSpoke();
        }

        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

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
