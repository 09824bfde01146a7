namespace PgNotify.Client;

/// <summary>
/// Changes may have been missed: reload what you show (a <see cref="LiveRows{TRow}"/> does it by itself), then carry
/// on; the subscription stays. For a snapshot subscription the client has already asked for a new snapshot, which
/// follows this message.
/// </summary>
public sealed class PgResyncMessage : PgNotifyMessage
{
    internal PgResyncMessage(string table, string reason, long? missed)
        : base(table)
    {
        Reason = reason;
        Missed = missed;
    }

    /// <summary>
    /// Why. The server's reasons (<c>slow_consumer</c>, <c>listener_reconnected</c>, <c>listener_overflow</c>,
    /// <c>position_expired</c>, <c>server_error</c>; docs/protocol.md), or the client's own:
    /// <c>reconnected</c> (the connection dropped and the server could not resume from a position),
    /// <c>client_overflow</c> (the app did not read this subscription fast enough and
    /// <see cref="PgNotifyClientOptions.SubscriptionBufferCapacity"/> messages were queued; <see cref="Missed"/> were dropped),
    /// <c>invalid_frame</c> (the server sent a frame the client could not read, which might have been a change: not JSON,
    /// wrong types, or nested deeper than 1,000 levels) and
    /// <c>message_too_big</c> (a frame over <see cref="PgNotifyClientOptions.MaxMessageBytes"/>, or a binary one, was skipped).
    /// </summary>
    public string Reason { get; }

    /// <summary>How many changes were dropped, when known.</summary>
    public long? Missed { get; }
}
