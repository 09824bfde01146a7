using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// <see cref="IPgTableSnapshots"/>: at most <see cref="PgNotifyOptions.MaxConcurrentSnapshots"/> snapshots at once, on
/// PgNotify's snapshot data source, of the tables the chosen source streams (<see cref="WatchedTables"/>); the others
/// wait for a slot (until their own cancellation).
/// </summary>
internal sealed class PgTableSnapshots(
    PgNotifyConnections connections, IOptions<PgNotifyOptions> options, WatchedTables watched, PgNotifyMetrics metrics, ILogger<PgTableSnapshots> logger)
    : IPgTableSnapshots, IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxConcurrentSnapshots);
    private int _waiting;

    /// <summary>Snapshots open right now.</summary>
    public int Running => options.Value.MaxConcurrentSnapshots - _slots.CurrentCount;

    /// <summary>Snapshots waiting for a slot right now.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public async Task<PgTableSnapshot> BeginAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        try
        {
            // A pooled connection the server had closed meanwhile (a restart, a failover) fails on its first use: the
            // pool is cleared and the snapshot begins once more on a new connection.
            return await StaleConnections.ReadAsync(connections.Snapshots, () => OpenAsync(cancellationToken), cancellationToken,
                ex => PgNotifyLog.SnapshotConnectionStale(logger, ex.Message)).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Whatever failed, opening the connection included, the slot is free again: a database that is down for a
            // while must not use up every slot for the host's lifetime.
            _slots.Release();
            if (ex is not OperationCanceledException)
            {
                PgNotifyLog.SnapshotFailed(logger, ex);
                metrics.SnapshotFailed();
            }

            throw;
        }
    }

    public void Dispose() => _slots.Dispose();

    private async Task<PgTableSnapshot> OpenAsync(CancellationToken cancellationToken)
    {
        NpgsqlConnection? connection = null;
        try
        {
            connection = await connections.Snapshots.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
            await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", connection, transaction))
            {
                await readOnly.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            // The first query of a REPEATABLE READ transaction takes its snapshot; pg_current_snapshot() reports it.
            await using var command = new NpgsqlCommand("SELECT pg_catalog.pg_current_snapshot()::text", connection, transaction);
            var text = (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
            var visibility = PgSnapshotVisibility.Parse(text);
            metrics.SnapshotStarted();
            var open = connection;
            connection = null;
            return new PgTableSnapshot(open, transaction, visibility, watched, () => _slots.Release());
        }
        finally
        {
            if (connection is not null)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
