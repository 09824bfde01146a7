namespace PgNotify.Internal;

/// <summary>
/// Widens pgoutput's 32-bit transaction ids to the 64-bit ones (<c>xid8</c>) the trigger source sends
/// (<c>pg_current_xact_id()</c>) and snapshots compare with (<see cref="PgSnapshotVisibility"/>). Starts from a 64-bit
/// reference (the server's next full xid when the stream starts) and takes each xid as the 64-bit value nearest the
/// previous one: the signed 32-bit difference, so xids up to 2^31 older or newer widen exactly, across epoch boundaries
/// too. PostgreSQL keeps every live xid within 2^31 of the next one (wraparound protection), and pgoutput delivers
/// transactions in commit order, so consecutive ones are always that close. Pure; one per replication connection.
/// </summary>
internal sealed class TransactionIdWidener(long reference)
{
    private long _previous = reference;

    /// <summary>The full transaction id of <paramref name="xid"/>, which becomes the next reference.</summary>
    public long Widen(uint xid)
    {
        var full = _previous + unchecked((int)(xid - (uint)_previous));
        if (full < 0)
        {
            full += 1L << 32; // "older" than epoch 0: cannot come from a real server; keeps a valid xid8
        }

        _previous = full;
        return full;
    }
}
