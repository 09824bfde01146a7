using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace PgNotify;

/// <summary>
/// Installs PgNotify's SQL (the <c>pgnotify</c> schema and its shared trigger function) and enables or disables it
/// per table. It runs the same SQL as the scripts in the repository's <c>sql/</c> folder. Every method is idempotent and
/// safe to call from several app instances at once; table and column names travel as parameters, never as SQL text.
/// Run it as the role that should own PgNotify's objects (see docs/security.md): the install refuses a <c>pgnotify</c>
/// schema, table or function that another role owns.
/// </summary>
public sealed partial class PgNotifyInstaller
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;

    /// <summary>Creates an installer that works through <paramref name="dataSource"/>.</summary>
    /// <param name="dataSource">Where to run the SQL. It needs rights to create a schema and triggers.</param>
    public PgNotifyInstaller(NpgsqlDataSource dataSource)
        : this(dataSource, NullLogger.Instance)
    {
    }

    /// <summary>Creates an installer that works through <paramref name="dataSource"/> and logs to <paramref name="logger"/>.</summary>
    /// <param name="dataSource">Where to run the SQL. It needs rights to create a schema and triggers.</param>
    /// <param name="logger">Where the installer reports what it found, such as columns excluded by another instance.</param>
    public PgNotifyInstaller(NpgsqlDataSource dataSource, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(logger);
        _dataSource = dataSource;
        _logger = logger;
    }

    /// <summary>The SQL of <c>sql/install.sql</c>.</summary>
    public static string InstallSql { get; } = ReadScript("install.sql");

    /// <summary>The SQL of <c>sql/uninstall.sql</c>.</summary>
    public static string UninstallSql { get; } = ReadScript("uninstall.sql");

    /// <summary>Creates or updates the <c>pgnotify</c> schema, its tables and functions.</summary>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the SQL has committed.</returns>
    /// <exception cref="PostgresException">
    /// Another role owns the <c>pgnotify</c> schema or an object in it (SQL state 42501); the message names the owner,
    /// and the hint the fix.
    /// </exception>
    public async Task InstallAsync(CancellationToken cancellationToken = default)
    {
        await using var command = _dataSource.CreateCommand(InstallSql);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores how long <c>pgnotify.change_log</c> and <c>pgnotify.large_payload</c> keep rows (in <c>pgnotify.settings</c>).
    /// The trigger itself prunes past these limits, so both tables stay bounded even when no app instance runs.
    /// </summary>
    /// <param name="changeLogRetention">How long changes stay in the log (<see cref="PgNotifyOptions.ChangeLogRetention"/>).</param>
    /// <param name="changeLogMaxRows">The most positions the log keeps (<see cref="PgNotifyOptions.ChangeLogMaxRows"/>).</param>
    /// <param name="largePayloadRetention">How long parked oversized rows stay (<see cref="PgNotifyOptions.LargePayloadRetention"/>).</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>A task that completes when the settings are stored.</returns>
    public async Task SetRetentionAsync(
        TimeSpan changeLogRetention, long changeLogMaxRows, TimeSpan largePayloadRetention, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(changeLogRetention, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(changeLogMaxRows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(largePayloadRetention, TimeSpan.Zero);
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE pgnotify.settings SET change_log_retention = $1, change_log_max_rows = $2, large_payload_retention = $3
            WHERE id = 1 AND (change_log_retention, change_log_max_rows, large_payload_retention) IS DISTINCT FROM ($1, $2, $3)
            """);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = changeLogRetention });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = changeLogMaxRows });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = largePayloadRetention });
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

    /// <summary>
    /// Starts streaming <paramref name="table"/>'s changes on <paramref name="channel"/>. Excluded columns only widen:
    /// the table's exclusions become those it had plus <paramref name="excludedColumns"/>. When that is more than
    /// <paramref name="excludedColumns"/> (another instance or an operator excluded more), a warning is logged. Only
    /// <see cref="RemoveExcludedColumnsAsync"/> narrows them.
    /// </summary>
    /// <param name="table">The table; it must exist.</param>
    /// <param name="channel">The NOTIFY channel. Default: <c>db_changes</c>.</param>
    /// <param name="excludedColumns">
    /// Columns the trigger must never send (for example <c>password_hash</c>); each must exist, or be excluded already.
    /// </param>
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
        var requested = excludedColumns?.ToArray() ?? [];
        await using var command = _dataSource.CreateCommand("SELECT pgnotify.enable_table($1, $2, $3, $4, $5)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = requested });
        command.Parameters.Add(new NpgsqlParameter<bool> { TypedValue = lossless });
        var effective = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string[] ?? [];
        var extra = effective.Except(requested, StringComparer.Ordinal).ToArray();
        if (extra.Length > 0)
        {
            Log.ExclusionsWider(_logger, table.ToString(), string.Join(", ", extra), string.Join(", ", effective));
        }
    }

    /// <summary>
    /// Stops excluding <paramref name="columns"/> of <paramref name="table"/>: the one way to narrow its exclusions, for
    /// an operator who means it. A column is removed by name and by column number, so name a renamed column by its
    /// current name (and by its old one to drop that name from the list too).
    /// </summary>
    /// <param name="table">The table.</param>
    /// <param name="columns">The columns to send again.</param>
    /// <param name="cancellationToken">Cancels the operation.</param>
    /// <returns>The columns still excluded.</returns>
    /// <exception cref="PostgresException">The table does not exist (SQL state 42P01).</exception>
    public async Task<IReadOnlyList<string>> RemoveExcludedColumnsAsync(
        PgTableName table, IEnumerable<string> columns, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(columns);
        await using var command = _dataSource.CreateCommand("SELECT pgnotify.remove_excluded_columns($1, $2, $3)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table.Name });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = columns.ToArray() });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string[] ?? [];
    }

    /// <summary>Stops streaming <paramref name="table"/>'s changes and forgets its settings (its excluded columns too). Not an error when it was not enabled.</summary>
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
