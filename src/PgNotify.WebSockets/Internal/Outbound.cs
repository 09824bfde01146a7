namespace PgNotify.WebSockets.Internal;

/// <summary>What an <see cref="Outbox"/> queues.</summary>
internal enum OutboundKind
{
    Change,
    Control,
    Close,
}

/// <summary>A queued frame: null for the close, or for a coalesced resync (built when written).</summary>
internal readonly record struct Outbound(byte[]? Frame, DateTimeOffset? Timestamp, OutboundKind Kind, string? Type = null);
