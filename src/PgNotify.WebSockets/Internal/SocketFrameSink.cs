using System.Net.WebSockets;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Writes frames to a socket with one <see cref="WebSocket.SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, bool, CancellationToken)"/>
/// per frame: where the server gave us no connection stream to write batches to (HTTP/2, test servers). Over HTTP/1.1
/// the socket's <see cref="FrameStream"/> is its sink.
/// </summary>
internal sealed class SocketFrameSink(WebSocket socket) : IFrameSink
{
    public bool WritesBatches => false;

    public async ValueTask WriteAsync(IReadOnlyList<byte[]> batch)
    {
        // No token: a registration per send was a measurable cost (docs/benchmarks.md). A send that must stop is
        // stopped by aborting the socket, which the session does when it ends.
        foreach (var frame in batch)
        {
            await socket.SendAsync(frame.AsMemory(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
        }
    }

    public Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken) =>
        CloseAsync(socket, status, description, cancellationToken);

    /// <summary>Sends the close frame, if <paramref name="socket"/> can still send one.</summary>
    internal static async Task CloseAsync(WebSocket socket, WebSocketCloseStatus status, string? description, CancellationToken cancellationToken)
    {
        if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await socket.CloseOutputAsync(status, description, cancellationToken).ConfigureAwait(false);
        }
    }
}
