namespace PgNotify;

/// <summary>
/// Reads the current rows of watched tables in one consistent PostgreSQL snapshot, as the same JSON that changes carry,
/// together with the snapshot's <see cref="PgSnapshotVisibility"/>: a consumer that subscribed to the change feed
/// first, then read a snapshot, drops the changes the snapshot includes and applies the others, and so ends equal to the
/// table. Registered by <c>AddPgNotifyCore</c> and <c>AddPgNotify</c>.
/// </summary>
/// <remarks>
/// Snapshots run on a data source of their own (at most <see cref="PgNotifyOptions.MaxConcurrentSnapshots"/>
/// connections, application name <c>PgNotify snapshots</c>), never on the listener's connections, so any number of
/// readers wait their turn without slowing change delivery.
/// </remarks>
public interface IPgTableSnapshots
{
    /// <summary>
    /// Waits for one of <see cref="PgNotifyOptions.MaxConcurrentSnapshots"/> slots, then opens a read-only
    /// REPEATABLE READ transaction and takes its snapshot. Dispose the result promptly: it holds the slot and the
    /// connection.
    /// </summary>
    /// <param name="cancellationToken">Stops the wait or the query.</param>
    /// <returns>The open snapshot.</returns>
    Task<PgTableSnapshot> BeginAsync(CancellationToken cancellationToken = default);
}
