using System.Runtime.CompilerServices;
using System.Text.Json;
using Npgsql;
using PgNotify.Internal;

namespace PgNotify;

/// <summary>
/// An open snapshot (from <see cref="IPgTableSnapshots.BeginAsync"/>): a read-only REPEATABLE READ transaction, so
/// every table read through it shows the database at one moment, <see cref="Visibility"/>. Holds a connection and one
/// of <see cref="PgNotifyOptions.MaxConcurrentSnapshots"/> slots until disposed. Not thread-safe: read one table at a
/// time.
/// </summary>
public sealed class PgTableSnapshot : IAsyncDisposable
{
    /// <summary>Rows fetched from the server at a time.</summary>
    internal const int FetchSize = 500;

    private const string CursorName = "pgnotify_snapshot";

    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly Action _release;
    private readonly WatchedTables _watched;
    private readonly Dictionary<PgTableName, (string[] Key, string[] Excluded)> _tables = [];
    private bool _disposed;

    internal PgTableSnapshot(
        NpgsqlConnection connection, NpgsqlTransaction transaction, PgSnapshotVisibility visibility, WatchedTables watched, Action release)
    {
        _connection = connection;
        _watched = watched;
        _transaction = transaction;
        _release = release;
        Visibility = visibility;
    }

    /// <summary>
    /// The transactions this snapshot sees: a change whose transaction it <see cref="PgSnapshotVisibility.Includes"/>
    /// is already in the rows read here; any other change is not.
    /// </summary>
    public PgSnapshotVisibility Visibility { get; }

    /// <summary>Rows read so far, over all tables (for metrics).</summary>
    internal long RowsRead { get; private set; }

    /// <summary>The table's primary key columns, in key order (what its rows are keyed by).</summary>
    /// <param name="table">A watched table.</param>
    /// <param name="cancellationToken">Stops the query.</param>
    /// <returns>The key's column names.</returns>
    /// <exception cref="PgSnapshotUnavailableException">
    /// The table does not exist or its source does not stream it, has no primary key, excludes a key column, or PgNotify's role may not
    /// read it; the message says which. The snapshot stays usable for other tables.
    /// </exception>
    public async Task<IReadOnlyList<string>> GetKeyAsync(PgTableName table, CancellationToken cancellationToken = default) =>
        (await DescribeAsync(table, cancellationToken).ConfigureAwait(false)).Key;

    /// <summary>
    /// The table's rows that pass every condition, in primary-key order, each as the JSON object change frames carry for
    /// it (<c>to_jsonb(row)</c> without the excluded columns). Streamed from a server-side cursor a few hundred rows at a
    /// time: stop enumerating whenever you have enough.
    /// </summary>
    /// <param name="table">A watched table.</param>
    /// <param name="conditions">Conditions on the row's JSON, evaluated in SQL with parameters; all must hold.</param>
    /// <param name="cancellationToken">Stops the read.</param>
    /// <returns>The rows.</returns>
    /// <exception cref="PgSnapshotUnavailableException">As for <see cref="GetKeyAsync"/>.</exception>
    public async IAsyncEnumerable<JsonElement> ReadRowsAsync(
        PgTableName table, IReadOnlyList<PgRowCondition>? conditions = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (key, excluded) = await DescribeAsync(table, cancellationToken).ConfigureAwait(false);
        var (sql, parameters) = SnapshotSql.RowsQuery(table, key, excluded, conditions ?? []);
        await using (var declare = new NpgsqlCommand($"DECLARE {CursorName} NO SCROLL CURSOR FOR {sql}", _connection, _transaction))
        {
            declare.Parameters.AddRange(parameters.ToArray());
            await declare.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        try
        {
            while (true)
            {
                var batch = new List<JsonElement>(FetchSize);
                await using (var fetch = new NpgsqlCommand($"FETCH FORWARD {FetchSize} FROM {CursorName}", _connection, _transaction))
                await using (var reader = await fetch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        batch.Add(ParseRow(reader.GetString(0)));
                    }
                }

                RowsRead += batch.Count;
                foreach (var row in batch)
                {
                    yield return row;
                }

                if (batch.Count < FetchSize)
                {
                    yield break;
                }
            }
        }
        finally
        {
            // The next table declares the cursor again; a broken connection is simply disposed.
            if (_connection.State == System.Data.ConnectionState.Open && !cancellationToken.IsCancellationRequested)
            {
                await using var close = new NpgsqlCommand($"CLOSE {CursorName}", _connection, _transaction);
                await close.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Ends the transaction and gives back the connection and the slot.</summary>
    /// <returns>A task that completes when done.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await _transaction.DisposeAsync().ConfigureAwait(false);
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            _release();
        }
    }

    private static JsonElement ParseRow(string json)
    {
        using var document = JsonDocument.Parse(json, PgChangePayload.DocumentOptions);
        return document.RootElement.Clone();
    }

    private async Task<(string[] Key, string[] Excluded)> DescribeAsync(PgTableName table, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tables.TryGetValue(table, out var known))
        {
            return known;
        }

        bool exists;
        string[]? key;
        string[]? excluded;
        bool readable;
        await using (var command = new NpgsqlCommand(SnapshotSql.TableInfoQuery(_watched), _connection, _transaction))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = table.Schema });
            command.Parameters.Add(new NpgsqlParameter { Value = table.Name });
            command.Parameters.Add(new NpgsqlParameter { Value = _watched.ConfiguredExclusions(table), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            exists = reader.GetBoolean(0);
            key = reader.IsDBNull(1) ? null : reader.GetFieldValue<string[]>(1);
            excluded = reader.IsDBNull(2) ? null : reader.GetFieldValue<string[]>(2);
            readable = reader.GetBoolean(3);
        }

        if (!exists)
        {
            throw new PgSnapshotUnavailableException($"Table {table} does not exist.");
        }

        if (excluded is null)
        {
            throw new PgSnapshotUnavailableException(_watched.NotWatchedMessage(table));
        }

        if (key is not { Length: > 0 })
        {
            throw new PgSnapshotUnavailableException($"Table {table} has no primary key, so its rows cannot be keyed: add a primary key to take snapshots of it.");
        }

        if (key.FirstOrDefault(excluded.Contains) is { } hidden)
        {
            throw new PgSnapshotUnavailableException($"Table {table} excludes its key column '{hidden}', so its rows cannot be keyed.");
        }

        if (!readable)
        {
            throw new PgSnapshotUnavailableException($"PgNotify's role may not read table {table}: GRANT SELECT ON {table} to it to take snapshots.");
        }

        var described = (key, excluded);
        _tables[table] = described;
        return described;
    }
}
