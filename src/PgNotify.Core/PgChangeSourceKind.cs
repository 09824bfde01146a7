namespace PgNotify;

/// <summary>Where PgNotify reads changes from (<see cref="PgNotifyOptions.Source"/>).</summary>
public enum PgChangeSourceKind
{
    /// <summary>A trigger on each table sends the change with NOTIFY (or writes it to the change log, with lossless delivery). The default.</summary>
    Notify,

    /// <summary>
    /// PostgreSQL's logical replication (pgoutput): no trigger and no NOTIFY; each instance streams a publication from a
    /// replication slot of its own. Changes carry positions from the WAL and clients resume from an in-memory history
    /// (see docs/replication.md). Needs <c>wal_level = logical</c> and the REPLICATION privilege.
    /// </summary>
    Replication,
}
