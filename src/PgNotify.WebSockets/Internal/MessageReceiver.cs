using System.Buffers;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;

namespace PgNotify.WebSockets.Internal;

/// <summary>What <see cref="MessageReceiver.ReadAsync"/> got.</summary>
internal enum ReceivedKind
{
    /// <summary>A whole message, in a rented buffer the caller returns to <see cref="ArrayPool{T}.Shared"/>.</summary>
    Message,

    /// <summary>The client's close frame.</summary>
    Closed,

    /// <summary>More than the limit arrived (the buffer holds the start): the caller closes with 1009 and drains.</summary>
    TooBig,
}

/// <summary>A message read from the socket; <see cref="Buffer"/> is rented (null when the client closed).</summary>
internal readonly record struct Received(ReceivedKind Kind, WebSocketMessageType Type, byte[]? Buffer, int Length);

/// <summary>
/// Reads the socket's messages, bounded in bytes across fragments, without holding a buffer while the socket is idle;
/// and reads what is left after a close. Used by the session's receive loop only; static, so an idle socket holds no
/// object of it.
/// </summary>
internal static class MessageReceiver
{
    private const int InitialBuffer = 4096;

    /// <summary>
    /// Waits for the next message without holding a buffer, and without an async frame of ours: an idle socket costs
    /// no receive buffer and no state machine. Pass the result to <see cref="ReadAsync"/>.
    /// </summary>
    public static ValueTask<ValueWebSocketReceiveResult> WaitAsync(SocketSession session, CancellationToken cancellationToken) =>
        session.Socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);

    /// <summary>Reads the message that <see cref="WaitAsync"/> saw arrive.</summary>
    public static async ValueTask<Received> ReadAsync(SocketSession session, ValueWebSocketReceiveResult peek, CancellationToken cancellationToken)
    {
        if (peek.MessageType == WebSocketMessageType.Close)
        {
            return new Received(ReceivedKind.Closed, peek.MessageType, null, 0);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(InitialBuffer);
        try
        {
            var length = 0;
            var end = peek.EndOfMessage;
            while (!end)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, session.Options.MaxMessageBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var room = Math.Min(buffer.Length, session.Options.MaxMessageBytes + 1) - length;
                var result = await session.Socket.ReceiveAsync(buffer.AsMemory(length, room), cancellationToken).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return new Received(ReceivedKind.Closed, result.MessageType, null, 0);
                }

                length += result.Count;
                end = result.EndOfMessage;
                if (length > session.Options.MaxMessageBytes)
                {
                    return new Received(ReceivedKind.TooBig, peek.MessageType, buffer, length);
                }
            }

            return new Received(ReceivedKind.Message, peek.MessageType, buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>After our close frame the client may still be sending the rest of its message; discard it until its close.</summary>
    public static async Task DrainUntilClosedAsync(SocketSession session, byte[] scratch, CancellationToken cancellationToken)
    {
        while (session.Socket.State is WebSocketState.Open or WebSocketState.CloseSent)
        {
            var result = await session.Socket.ReceiveAsync(scratch.AsMemory(), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }
    }

    /// <summary>Our close is on its way: lets the client answer it rather than resetting the connection under it.</summary>
    public static async Task AwaitClientCloseAsync(SocketSession session, TimeSpan timeoutAfter)
    {
        using var timeout = new CancellationTokenSource(timeoutAfter, session.Time);
        var scratch = ArrayPool<byte>.Shared.Rent(1024);
        try
        {
            while (session.Socket.State == WebSocketState.CloseSent)
            {
                if ((await session.Socket.ReceiveAsync(scratch.AsMemory(), timeout.Token).ConfigureAwait(false)).MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The client did not answer in time: nothing more to do.
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ConnectionAbortedException)
        {
            // The runtime closed the socket itself after a receive error (e.g. 1007 for invalid UTF-8) and refuses
            // further reads. Closing the connection at once would make the kernel answer the client's close reply
            // with a reset, which can wipe our close frame from the client's receive buffer: linger briefly instead.
            await Task.Delay(TimeSpan.FromMilliseconds(250), session.Time, CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}
