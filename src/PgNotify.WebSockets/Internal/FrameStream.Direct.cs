using System.Net.Sockets;

namespace PgNotify.WebSockets.Internal;

/// <summary>The upgraded connection's stream: writes straight to the connection's socket (DirectSocketWrites).</summary>
/// <remarks>
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
/// </remarks>
internal sealed partial class FrameStream
{
    private const int ModePipe = 0;
    private const int ModeWaiting = 1;
    private const int ModeDirect = 2;

    /// <summary>How long the first write waits for the client's first bytes before it settles for the pipe.</summary>
    internal static readonly TimeSpan ProofTimeout = TimeSpan.FromSeconds(2);

    // An unmasked ping with no payload: any RFC 6455 client answers it with a pong.
    private static readonly byte[] ProbePing = [0x89, 0x00];

    private Socket? _direct;
    private int _mode;
    private TaskCompletionSource? _spoke;
    private WebSocketMetrics? _metrics;

    /// <summary>
    /// Lets this stream write straight to <paramref name="socket"/>, the connection's own socket, as soon as the client
    /// has sent something (see the remarks). Only for a plain TCP connection: nothing may sit between the socket and
    /// the upgraded stream that changes bytes (TLS, a connection middleware).
    /// </summary>
    /// <param name="socket">The connection's socket.</param>
    /// <param name="metrics">Where the path the socket ends up on is counted.</param>
    public void WriteDirectTo(Socket socket, WebSocketMetrics metrics)
    {
        _direct = socket;
        _metrics = metrics;
        _mode = ModeWaiting;
    }

    private ValueTask WriteOutAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken) =>
        Volatile.Read(ref _mode) == ModeDirect ? SendDirectAsync(buffer, cancellationToken) : _inner.WriteAsync(buffer, cancellationToken);

    private async ValueTask SendDirectAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        // The token is checked, not passed on: a send that waits for a client that does not read ends when the
        // connection is aborted (which is what cancels the tokens passed here: the request's, or the close timeout's).
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            await DirectSender.SendAsync(_direct!, buffer).ConfigureAwait(false);
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

    private void CountWritePath(string path) => _metrics?.WritePathChosen(path);

    private async ValueTask<int> ReadThenCheckAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (read > 0)
        {
            ClientSpoke();
        }

        return read;
    }
}
