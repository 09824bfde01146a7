namespace PgNotify;

/// <summary>A table whose changes PgNotify's trigger streams, as listed by <see cref="PgNotifyInstaller.GetEnabledTablesAsync"/>.</summary>
/// <param name="Table">The table, by its current name.</param>
/// <param name="Channel">The NOTIFY channel its trigger sends on.</param>
/// <param name="ExcludedColumns">The columns its trigger leaves out of every payload.</param>
/// <param name="Lossless">Whether its trigger writes to the change log (lossless delivery).</param>
public sealed record PgEnabledTable(PgTableName Table, string Channel, IReadOnlyList<string> ExcludedColumns, bool Lossless);
