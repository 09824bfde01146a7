namespace PgNotify;

/// <summary>Why a <see cref="PgChangeGap"/> was emitted.</summary>
public enum PgChangeGapReason
{
    /// <summary>
    /// The listener lost its connection and listens again: changes committed while it was away were not notified.
    /// </summary>
    ListenerReconnected,

    /// <summary>This consumer fell behind, its bounded buffer filled up and changes were dropped for it.</summary>
    ConsumerOverflow,

    /// <summary>The listener's own inbox filled up (the dispatcher could not keep up) and notifications were dropped.</summary>
    ListenerOverflow,

    /// <summary>A notification could not be turned into a change (for example an oversized row that was already pruned).</summary>
    Unreadable,
}
