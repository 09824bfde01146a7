using System.Net.WebSockets;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Writes frames to a socket: many in one write through the connection's stream when the server gave us one
/// (<see cref="FrameStream"/>), otherwise one <see cref="WebSocket.SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, bool, CancellationToken)"/> per frame.
/// </summary>
internal sealed class SocketFrameSink(WebSocket socket, FrameStream? frames) : IFrameSink
{
    public bool WritesBatches => frames is not null;

    public async ValueTask WriteAsync(IReadOnlyList<byte[]> batch)
    {
        if (frames is null)
        {
            // No token: a registration per send was a measurable cost (docs/benchmarks.md). A send that must stop is
            // stopped by aborting the socket, which the session does when it ends.
            foreach (var frame in batch)
            {
                await socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
            }

            return;
        }

        if (!await frames.WriteTextFramesAsync(batch).ConfigureAwait(false))
        {
            // The runtime's WebSocket closed its side itself (e.g. 1007 for invalid UTF-8 from the client).
            throw new WebSocketException(WebSocketError.InvalidState, "The WebSocket has sent its close frame.");
        }
    }

    public async Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken)
    {
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await socket.CloseOutputAsync(status, description, cancellationToken).ConfigureAwait(false);
        }
    }
}
