namespace PgNotify.Client;

/// <summary>
/// The server acknowledged the subscription (the first time, and again after each reconnect): every change committed
/// from now on is delivered. Data read after this message misses nothing.
/// </summary>
public sealed class PgSubscribedMessage : PgNotifyMessage
{
    internal PgSubscribedMessage(string table, long? position, bool resumed, bool snapshot)
        : base(table)
    {
        Position = position;
        Resumed = resumed;
        Snapshot = snapshot;
    }

    /// <summary>With lossless delivery: the head position when the subscription became live; otherwise <see langword="null"/>.</summary>
    public long? Position { get; }

    /// <summary>
    /// Whether this acknowledges a resume (<c>since</c>) after a reconnect: the changes missed meanwhile follow, so
    /// nothing was lost and nothing needs reloading.
    /// </summary>
    public bool Resumed { get; }

    /// <summary>Whether a snapshot (<see cref="PgSnapshotMessage"/> frames, then <see cref="PgSnapshotEndMessage"/>) follows.</summary>
    public bool Snapshot { get; }
}
