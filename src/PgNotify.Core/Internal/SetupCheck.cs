using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// With <see cref="PgNotifyOptions.InstallTriggers"/> off, the database was set up by someone else: checks that the
/// configured tables are enabled on the configured channel and mode, and that PgNotify's role holds the rights the
/// listener needs. Each problem comes back as a sentence that names its fix; none of them fails the start (the database
/// may be fixed later), and the listener runs the check again on every (re)connect.
/// </summary>
internal static class SetupCheck
{
    public static async Task<IReadOnlyList<string>> RunAsync(NpgsqlDataSource dataSource, PgNotifyOptions options, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

        string role;
        bool? schemaUsage;
        await using (var command = new NpgsqlCommand(
            "SELECT current_user::text, (SELECT has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = 'pgnotify')",
            connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            role = reader.GetString(0);
            schemaUsage = reader.IsDBNull(1) ? null : reader.GetBoolean(1);
        }

        var quotedRole = QuoteIdentifier(role);
        if (schemaUsage is null)
        {
            problems.Add(
                "The pgnotify schema does not exist in this database: run sql/install.sql (as the role that should own " +
                "PgNotify's objects), then sql/enable_table.sql for each table, or turn PgNotify:InstallTriggers on.");
            return problems;
        }

        if (schemaUsage == false)
        {
            problems.Add($"Role {quotedRole} has no USAGE on schema pgnotify: run GRANT USAGE ON SCHEMA pgnotify TO {quotedRole};");
        }

        string[] needed = options.LosslessDelivery ? ["large_payload", "change_log", "change_log_state"] : ["large_payload"];
        var granted = new Dictionary<string, bool>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand(
            """
            SELECT c.relname::text, has_table_privilege(c.oid, 'SELECT')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'pgnotify' AND c.relname = ANY($1)
            """, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = needed });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                granted[reader.GetString(0)] = reader.GetBoolean(1);
            }
        }

        foreach (var table in needed)
        {
            if (!granted.TryGetValue(table, out var canSelect))
            {
                problems.Add($"Table pgnotify.{table} does not exist: run the current sql/install.sql as the owner of the pgnotify schema.");
            }
            else if (!canSelect)
            {
                problems.Add(
                    $"Role {quotedRole} cannot read pgnotify.{table}, so " +
                    (table == "large_payload" ? "rows too large for NOTIFY (8000 bytes) are lost" : "lossless delivery reads nothing") +
                    $": run GRANT SELECT ON pgnotify.{table} TO {quotedRole};");
            }
        }

        if (schemaUsage == false)
        {
            return problems; // enabled_tables() cannot be called either: one fix first
        }

        var enabled = new Dictionary<PgTableName, (string Channel, bool Lossless)>();
        try
        {
            await using var command = new NpgsqlCommand("SELECT schema_name, table_name, channel, lossless FROM pgnotify.enabled_tables()", connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                enabled[new PgTableName(reader.GetString(0), reader.GetString(1))] = (reader.GetString(2), reader.GetBoolean(3));
            }
        }
        catch (PostgresException ex) when (!ex.IsTransient)
        {
            problems.Add(
                $"PgNotify cannot list the enabled tables (pgnotify.enabled_tables(): {ex.MessageText}), so it cannot check " +
                $"PgNotify:Tables: run the current sql/install.sql as the owner of the pgnotify schema, and let role {quotedRole} " +
                $"call it: GRANT EXECUTE ON FUNCTION pgnotify.enabled_tables() TO {quotedRole};");
            return problems;
        }

        var mode = options.LosslessDelivery ? "lossless" : "live";
        foreach (var text in options.Tables)
        {
            var table = PgTableName.Parse(text);
            if (!enabled.TryGetValue(table, out var settings))
            {
                problems.Add(
                    $"PgNotify:Tables lists '{text}', but no such table is enabled in the database (pgnotify.enabled_tables()): " +
                    $"fix the name in PgNotify:Tables (names are exact and case-sensitive), or enable it: " +
                    $"psql -v schema={table.Schema} -v table={table.Name} -v channel={options.Channel} -v lossless={(options.LosslessDelivery ? "true" : "false")} -f sql/enable_table.sql");
            }
            else if (!string.Equals(settings.Channel, options.Channel, StringComparison.Ordinal))
            {
                problems.Add(
                    $"Table {table} is enabled on channel '{settings.Channel}', but PgNotify listens on '{options.Channel}': " +
                    "its changes never arrive. Set PgNotify:Channel, or enable the table again with the right channel (sql/enable_table.sql).");
            }
            else if (settings.Lossless != options.LosslessDelivery)
            {
                problems.Add(
                    $"Table {table} is enabled in {(settings.Lossless ? "lossless" : "live")} mode, but PgNotify runs in {mode} mode: " +
                    $"its changes are not delivered. Enable it again with lossless => {(options.LosslessDelivery ? "true" : "false")} (sql/enable_table.sql), " +
                    "or change PgNotify:LosslessDelivery.");
            }
        }

        return problems;
    }

    /// <summary>The sentence that names the fix for a denied read of <c>pgnotify.large_payload</c>.</summary>
    public static string LargePayloadGrant(string? role)
    {
        var quoted = string.IsNullOrEmpty(role) ? "<PgNotify's role>" : QuoteIdentifier(role);
        return $"PgNotify's role cannot read pgnotify.large_payload, so every row too large for NOTIFY (8000 bytes) is lost: " +
               $"run GRANT USAGE ON SCHEMA pgnotify TO {quoted}; GRANT SELECT ON pgnotify.large_payload TO {quoted};";
    }

    private static string QuoteIdentifier(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
