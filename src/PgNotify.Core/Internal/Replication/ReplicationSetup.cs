using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// The database side of the replication source: checks the server (wal_level, the REPLICATION privilege, a free slot)
/// and the tables (a usable replica identity) with errors that name the fix, and installs the publication of
/// <see cref="PgNotifyOptions.Tables"/> with <c>REPLICA IDENTITY FULL</c> (idempotent; several instances at once
/// serialise on an advisory lock). Runs on the host's start and on the connect loop.
/// </summary>
internal sealed class ReplicationSetup(IOptions<PgNotifyOptions> options, PgNotifyConnections connections, PgNotifyInstaller installer, ILogger<PgNotifyListener> logger)
{
    /// <summary>The publication every instance streams from.</summary>
    public const string PublicationName = "pgnotify";

    /// <summary>Serialises publication and replica identity changes of instances starting at once.</summary>
    private const long AdvisoryLockKey = 0x50674E6F74696679; // "PgNotify"

    private readonly PgNotifyOptions _options = options.Value;

    /// <summary>This instance's slot: <c>pgnotify_</c> and <see cref="PgNotifyOptions.InstanceName"/>, lowercased, other characters as '_'.</summary>
    public string SlotName { get; } = SlotNameFor(options.Value.InstanceName ?? Environment.MachineName);

    public static string SlotNameFor(string instanceName)
    {
        var sb = new StringBuilder("pgnotify_");
        foreach (var c in instanceName.ToLowerInvariant())
        {
            sb.Append(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) ? c : '_');
        }

        return sb.Length > 63 ? sb.ToString(0, 63) : sb.ToString();
    }

    /// <summary>Fails with a message naming the fix when the server cannot give this instance a replication stream.</summary>
    public async Task CheckServerAsync(CancellationToken cancellationToken)
    {
        await using var command = connections.Side.CreateCommand(
            """
            SELECT current_setting('wal_level'),
                   (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user),
                   current_user,
                   EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1),
                   (SELECT count(*) FROM pg_replication_slots)::int,
                   current_setting('max_replication_slots')::int,
                   (SELECT count(*) FROM pg_stat_replication)::int,
                   current_setting('max_wal_senders')::int,
                   coalesce((SELECT string_agg(slot_name, ', ' ORDER BY slot_name) FROM pg_replication_slots WHERE NOT active), '')
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SlotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var walLevel = reader.GetString(0);
        if (walLevel != "logical")
        {
            throw new InvalidOperationException(
                $"PgNotify:Source is Replication, but PostgreSQL runs with wal_level = {walLevel}. Set wal_level = logical " +
                "(ALTER SYSTEM SET wal_level = logical, or in postgresql.conf) and restart PostgreSQL, or set PgNotify:Source to Notify.");
        }

        if (!reader.GetBoolean(1))
        {
            throw new InvalidOperationException(
                $"PgNotify:Source is Replication, but role '{reader.GetString(2)}' may not open a replication connection. " +
                $"Grant it: ALTER ROLE {ListenerSetup.QuoteIdentifier(reader.GetString(2))} REPLICATION; (and allow it in pg_hba.conf for the replication database).");
        }

        var slotExists = reader.GetBoolean(3);
        if (!slotExists && reader.GetInt32(4) >= reader.GetInt32(5))
        {
            var inactive = reader.GetString(8);
            throw new InvalidOperationException(
                $"PgNotify needs a replication slot ('{SlotName}'), but all max_replication_slots = {reader.GetInt32(5)} are in use. " +
                "Raise max_replication_slots (and restart PostgreSQL), or drop unused slots with pg_drop_replication_slot" +
                (inactive.Length > 0 ? $" (inactive now: {inactive})." : "."));
        }

        if (reader.GetInt32(6) >= reader.GetInt32(7))
        {
            throw new InvalidOperationException(
                $"PgNotify needs a WAL sender, but all max_wal_senders = {reader.GetInt32(7)} are in use. Raise max_wal_senders and restart PostgreSQL.");
        }
    }

    /// <summary>
    /// Installs PgNotify's schema, sets <c>REPLICA IDENTITY FULL</c> on each configured table that lacks it and adds the
    /// tables to the publication (created when missing). Tables are only added: removing one is an explicit
    /// <c>ALTER PUBLICATION pgnotify DROP TABLE</c> (instances of a rolling deploy may watch different tables).
    /// </summary>
    public async Task InstallAsync(CancellationToken cancellationToken)
    {
        await CheckServerAsync(cancellationToken).ConfigureAwait(false);
        await installer.InstallAsync(cancellationToken).ConfigureAwait(false);
        var connection = await connections.Side.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({AdvisoryLockKey})", cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection,
                    "CREATE TABLE IF NOT EXISTS pgnotify.replication_slot (slot_name text PRIMARY KEY, last_active timestamptz NOT NULL)",
                    cancellationToken).ConfigureAwait(false);
                var added = new List<string>();
                foreach (var text in _options.Tables)
                {
                    var table = PgTableName.Parse(text);
                    var (exists, identity, published) = await TableStateAsync(connection, table, cancellationToken).ConfigureAwait(false);
                    if (!exists)
                    {
                        throw new InvalidOperationException($"PgNotify cannot watch '{text}': it does not exist. Create it, or fix PgNotify:Tables.");
                    }

                    if (identity != 'f')
                    {
                        await ExecuteAsync(connection, $"ALTER TABLE {Quote(table)} REPLICA IDENTITY FULL", cancellationToken).ConfigureAwait(false);
                        PgNotifyLog.ReplicaIdentitySet(logger, table);
                    }

                    if (!published)
                    {
                        added.Add(Quote(table));
                    }
                }

                if (!await PublicationExistsAsync(connection, cancellationToken).ConfigureAwait(false))
                {
                    await ExecuteAsync(connection, $"CREATE PUBLICATION {PublicationName}" + (added.Count > 0 ? " FOR TABLE " + string.Join(", ", added) : ""),
                        cancellationToken).ConfigureAwait(false);
                }
                else if (added.Count > 0)
                {
                    await ExecuteAsync(connection, $"ALTER PUBLICATION {PublicationName} ADD TABLE " + string.Join(", ", added), cancellationToken).ConfigureAwait(false);
                }

                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                if (added.Count > 0)
                {
                    PgNotifyLog.PublicationTablesAdded(logger, PublicationName, string.Join(", ", added));
                }
            }
        }

        ReportExclusions();
    }

    /// <summary>
    /// For a setup made by hand (<see cref="PgNotifyOptions.InstallTriggers"/> off): fails with the fix when a table is
    /// missing, not in the publication, or has no replica identity that carries old rows.
    /// </summary>
    public async Task CheckTablesAsync(CancellationToken cancellationToken)
    {
        var connection = await connections.Side.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            if (!await PublicationExistsAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                throw new InvalidOperationException(
                    $"PgNotify:Source is Replication, but publication '{PublicationName}' does not exist. Create it: CREATE PUBLICATION {PublicationName} FOR TABLE ...; " +
                    "or turn PgNotify:InstallTriggers on.");
            }

            foreach (var text in _options.Tables)
            {
                var table = PgTableName.Parse(text);
                var (exists, identity, published) = await TableStateAsync(connection, table, cancellationToken).ConfigureAwait(false);
                if (!exists)
                {
                    throw new InvalidOperationException($"PgNotify cannot watch '{text}': it does not exist. Create it, or fix PgNotify:Tables.");
                }

                if (identity != 'f')
                {
                    throw new InvalidOperationException(
                        $"PgNotify cannot stream {table} by replication: its replica identity is " +
                        (identity switch { 'n' => "NOTHING", 'd' => "DEFAULT (the primary key)", _ => "an index" }) +
                        $", so UPDATE and DELETE do not carry the old row (and without a key, UPDATE and DELETE fail once it is published). " +
                        $"Run ALTER TABLE {Quote(table)} REPLICA IDENTITY FULL; or turn PgNotify:InstallTriggers on.");
                }

                if (!published)
                {
                    throw new InvalidOperationException(
                        $"PgNotify cannot stream {table}: it is not in publication '{PublicationName}'. Run ALTER PUBLICATION {PublicationName} ADD TABLE {Quote(table)}; or turn PgNotify:InstallTriggers on.");
                }
            }
        }

        ReportExclusions();
    }

    private void ReportExclusions()
    {
        if (_options.ExcludedColumns.Count > 0)
        {
            PgNotifyLog.ExcludedColumnsStrippedInApp(logger, string.Join(", ", _options.ExcludedColumns.Keys));
        }
    }

    private static async Task<(bool Exists, char Identity, bool Published)> TableStateAsync(NpgsqlConnection connection, PgTableName table, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT c.relreplident,
                   EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.pubname = $3 AND p.schemaname = n.nspname AND p.tablename = c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
            """, connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PublicationName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? (true, reader.GetChar(0), reader.GetBoolean(1))
            : (false, ' ', false);
    }

    private static async Task<bool> PublicationExistsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = PublicationName });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string Quote(PgTableName table) => ListenerSetup.QuoteIdentifier(table.Schema) + "." + ListenerSetup.QuoteIdentifier(table.Name);
}
