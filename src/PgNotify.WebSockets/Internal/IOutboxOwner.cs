using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// What an <see cref="Outbox"/> and its <see cref="OutboxWriter"/> use of their socket (the <see cref="SocketSession"/>):
/// read through it rather than copied into each part, so that an idle socket holds each of them once.
/// </summary>
internal interface IOutboxOwner
{
    /// <summary>The socket's id for the logs (read only when something is logged).</summary>
    string Id { get; }

    PgChangeWebSocketOptions Options { get; }

    WebSocketMetrics Metrics { get; }

    TimeProvider Time { get; }

    ILogger Logger { get; }

    /// <summary>The write rounds of <see cref="PgChangeWebSocketOptions.WriteCoalescingDelay"/>; null or a zero delay: writes are never put off.</summary>
    DeferredWrites? DeferredWrites { get; }

    /// <summary>Ends the socket's reads and writes now, without waiting (the writer failed: the peer is gone).</summary>
    void Abort();

    /// <summary>Ends the socket's reads and writes after <paramref name="delay"/> unless it ended before (our close is sent: the client has that long to answer).</summary>
    void AbortAfter(TimeSpan delay);
}
