namespace PgNotify.Internal;

/// <summary>
/// Which tables the chosen source streams and which of their columns it leaves out, as a snapshot asks it: so snapshot
/// rows are the rows of change frames, byte for byte. Chosen at registration with the source
/// (<see cref="For"/>): the trigger source's tables are its enabled ones, with the exclusions stored in the database
/// (<c>pgnotify.enabled_tables()</c>, which may be wider than this instance's); the replication source streams
/// publication <c>pgnotify</c> and strips <see cref="PgNotifyOptions.ExcludedColumns"/> in the app
/// (<see cref="PgOutputDecoder"/>), so its snapshots take the same exclusions from the same options.
/// </summary>
internal sealed class WatchedTables
{
    private readonly IReadOnlyDictionary<PgTableName, string[]>? _configured;

    private WatchedTables(string excludedColumnsSql, IReadOnlyDictionary<PgTableName, string[]>? configured)
    {
        ExcludedColumnsSql = excludedColumnsSql;
        _configured = configured;
    }

    /// <summary>The trigger source's tables: those with PgNotify's trigger.</summary>
    public static WatchedTables Triggers { get; } = new(
        "(SELECT e.excluded_columns FROM pgnotify.enabled_tables() e WHERE e.schema_name = $1 AND e.table_name = $2)", null);

    /// <summary>
    /// An SQL expression of the table's excluded columns (<c>text[]</c>), NULL when the source does not stream it; over
    /// <c>$1</c> (schema), <c>$2</c> (name) and <c>$3</c> (<see cref="ConfiguredExclusions"/>, <c>text[]</c>).
    /// </summary>
    public string ExcludedColumnsSql { get; }

    /// <summary>The replication source's tables: those in its publication (also added by other instances, or by hand).</summary>
    public static WatchedTables Publication(IReadOnlyDictionary<PgTableName, string[]> excluded) => new(
        $"""
        CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables p
                          WHERE p.pubname = '{ReplicationSetup.PublicationName}' AND p.schemaname = $1 AND p.tablename = $2)
             THEN $3::text[] END
        """,
        excluded);

    /// <summary>What the source configured by <paramref name="options"/> streams.</summary>
    public static WatchedTables For(PgNotifyOptions options) =>
        options.Source == PgChangeSourceKind.Replication ? Publication(options.ExcludedColumnsByTable()) : Triggers;

    /// <summary>The exclusions this instance strips in the app (none for the trigger source, which strips them in SQL).</summary>
    public string[] ConfiguredExclusions(PgTableName table) =>
        _configured is not null && _configured.TryGetValue(table, out var columns) ? columns : [];

    /// <summary>Why a snapshot of <paramref name="table"/> is refused when the source does not stream it, and the fix.</summary>
    public string NotWatchedMessage(PgTableName table) => _configured is null
        ? $"Table {table} is not enabled for PgNotify (no trigger), so its rows could not match its changes."
        : $"Table {table} is not in publication '{ReplicationSetup.PublicationName}', so the replication source streams no changes of it " +
          $"and its rows could not match them: list it in PgNotify:Tables (with InstallTriggers on, an instance adds it to the publication " +
          $"when it starts), or run ALTER PUBLICATION {ReplicationSetup.PublicationName} ADD TABLE {table};";
}
