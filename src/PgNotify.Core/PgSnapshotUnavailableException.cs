namespace PgNotify;

/// <summary>
/// A table's rows cannot be read as a snapshot, for a reason the message states: it has no primary key (the rows could
/// not be keyed), a key column is excluded, it is not enabled, or PgNotify's role may not read it.
/// </summary>
public sealed class PgSnapshotUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public PgSnapshotUnavailableException()
    {
    }

    /// <summary>Creates the exception with a message that says why.</summary>
    /// <param name="message">Why the snapshot is unavailable, and what fixes it.</param>
    public PgSnapshotUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">Why the snapshot is unavailable.</param>
    /// <param name="innerException">The cause.</param>
    public PgSnapshotUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
