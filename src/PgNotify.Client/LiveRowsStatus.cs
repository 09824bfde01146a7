namespace PgNotify.Client;

/// <summary>Where a <see cref="LiveRows{TRow}"/> is (<see cref="LiveRows{TRow}.Status"/>).</summary>
public enum LiveRowsStatus
{
    /// <summary>Waiting for the first snapshot: <see cref="LiveRows{TRow}.Rows"/> is empty.</summary>
    Loading,

    /// <summary>The rows equal the table's (under the filter) as of the last change received.</summary>
    Live,

    /// <summary>Changes may have been missed (a resync, a reconnect the server could not resume): a new snapshot is on its way; the rows shown are the last known.</summary>
    Resyncing,

    /// <summary>The subscription ended with an error (<see cref="LiveRows{TRow}.Error"/>): refused, ended by the server, or the client faulted.</summary>
    Faulted,

    /// <summary>Disposed, or the client was disposed.</summary>
    Stopped,
}
