namespace PgNotify;

/// <summary>
/// One item of the change stream: either a <see cref="PgChange"/> or a <see cref="PgChangeGap"/> that says changes
/// may have been missed at that point. Use pattern matching to tell them apart.
/// </summary>
public abstract class PgChangeEvent
{
    private protected PgChangeEvent(DateTimeOffset receivedAt) => ReceivedAt = receivedAt;

    /// <summary>When the listener received the notification (or noticed the gap), by the host's clock.</summary>
    public DateTimeOffset ReceivedAt { get; }
}
