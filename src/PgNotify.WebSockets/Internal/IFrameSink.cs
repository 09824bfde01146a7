using System.Net.WebSockets;

namespace PgNotify.WebSockets.Internal;

/// <summary>Where an <see cref="Outbox"/> writes its frames: the socket's connection (<see cref="SocketFrameSink"/>).</summary>
internal interface IFrameSink
{
    /// <summary>True when several frames may go out in one write; otherwise each write carries one frame.</summary>
    bool WritesBatches { get; }

    /// <summary>Writes the frames, in order. Throws when the peer is gone or the socket closed its side itself.</summary>
    ValueTask WriteAsync(IReadOnlyList<byte[]> frames);

    /// <summary>Sends the close frame, if the socket can still send one.</summary>
    Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken);
}
