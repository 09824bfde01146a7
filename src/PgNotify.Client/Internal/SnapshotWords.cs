namespace PgNotify.Client.Internal;

/// <summary>The snapshot's protocol words (issue #13), until the server's side adds them to the shared Protocol.</summary>
internal static class SnapshotWords
{
    public const string Snapshot = "snapshot";
    public const string SnapshotEnd = "snapshot_end";
    public const string SnapshotUnavailable = "snapshot_unavailable";
}
