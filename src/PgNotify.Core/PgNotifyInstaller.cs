using Npgsql;

namespace PgNotify;

/// <summary>
/// Installs PgNotify's SQL (the <c>pgnotify</c> schema and its shared trigger function) and enables or disables it
/// per table. It runs the same SQL as the scripts in the repository's <c>sql/</c> folder. Every method is idempotent and
/// safe to call from several app instances at once; table and column names travel as parameters, never as SQL text.
/// </summary>
public sealed class PgNotifyInstaller
{
    private readonly NpgsqlDataSource _dataSource;

    /// <summary>Creates an installer that works through <paramref name="dataSource"/>.</summary>
    /// <param name="dataSource">Where to run the SQL. It needs rights to create a schema and triggers.</param>
    public PgNotifyInstaller(NpgsqlDataSource dataSource)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        _dataSource = dataSource;
    }

    /// <summary>The SQL of <c>sql/install.sql</c>.</summary>
    public static string InstallSql { get; } = ReadScript("install.sql");

    /// <summary>The SQL of <c>sql/uninstall.sql</c>.</summary>
    public static string UninstallSql { get; } = ReadScript("uninstall.sql");

    /// <summary>Creates or updates the <c>pgnotify</c> schema, its tables and functions.</summary>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the SQL has committed.</returns>
    public async Task InstallAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(InstallSql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the <c>pgnotify</c> schema and, with it, the triggers on every watched table. Table data is untouched.</summary>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the SQL has committed.</returns>
    public async Task UninstallAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(UninstallSql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts streaming <paramref name="table"/>'s changes on <paramref name="channel"/>.</summary>
    /// <param name="table">The table; it must exist.</param>
    /// <param name="channel">The NOTIFY channel. Default: <c>db_changes</c>.</param>
    /// <param name="excludedColumns">Columns the trigger must never send (for example <c>password_hash</c>); each must exist.</param>
    /// <param name="lossless">Whether the trigger writes each change to the change log (see <see cref="PgNotifyOptions.LosslessDelivery"/>).</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the triggers are in place.</returns>
    /// <exception cref="PostgresException">The table or a column does not exist (SQL state 42P01 or 42703).</exception>
    public async Task EnableTableAsync(
        PgTableName table,
        string channel = "db_changes",
        IEnumerable<string>? excludedColumns = null,
        bool lossless = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(channel);
        await using var command = _dataSource.CreateCommand("SELECT pgnotify.enable_table($1, $2, $3, $4, $5)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = excludedColumns?.ToArray() ?? [] });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = lossless });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops streaming <paramref name="table"/>'s changes. Not an error when it was not enabled.</summary>
    /// <param name="table">The table.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the triggers are gone.</returns>
    public async Task DisableTableAsync(PgTableName table, CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand("SELECT pgnotify.disable_table($1, $2)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Lists the tables whose changes are streamed.</summary>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>The enabled tables, ordered by schema and name.</returns>
    public async Task<IReadOnlyList<PgEnabledTable>> GetEnabledTablesAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT schema_name, table_name, channel, excluded_columns, lossless FROM pgnotify.enabled_tables()");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var tables = new List<PgEnabledTable>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            tables.Add(new PgEnabledTable(
                new PgTableName(reader.GetString(0), reader.GetString(1)),
                reader.GetString(2),
                reader.GetFieldValue<string[]>(3),
                reader.GetBoolean(4)));
        }

        return tables;
    }

    private static string ReadScript(string name)
    {
        using var stream = typeof(PgNotifyInstaller).Assembly.GetManifestResourceStream("PgNotify.Sql." + name)
            ?? throw new InvalidOperationException($"PgNotify's embedded script {name} is missing.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
