namespace PgNotify;

/// <summary>
/// Marks a point in the change stream where changes may have been missed. Consumers that mirror data should reload
/// it (or, with lossless delivery, the gap is closed by replay and this is never seen for reconnects).
/// </summary>
public sealed class PgChangeGap : PgChangeEvent
{
    /// <summary>Creates a gap marker.</summary>
    /// <param name="reason">Why changes may be missing.</param>
    /// <param name="droppedCount">How many changes are known to be lost, when known; otherwise <see langword="null"/>.</param>
    /// <param name="receivedAt">When the gap was noticed.</param>
    public PgChangeGap(PgChangeGapReason reason, long? droppedCount, DateTimeOffset receivedAt)
        : base(receivedAt)
    {
        Reason = reason;
        DroppedCount = droppedCount;
    }

    /// <summary>Why changes may be missing.</summary>
    public PgChangeGapReason Reason { get; }

    /// <summary>How many changes are known to be lost, or <see langword="null"/> when that cannot be known (a reconnect).</summary>
    public long? DroppedCount { get; }

    /// <inheritdoc />
    public override string ToString() => $"Gap: {Reason}" + (DroppedCount is { } n ? $" ({n} dropped)" : "");
}
