namespace PgNotify;

/// <summary>The kind of change a <see cref="PgChange"/> describes.</summary>
public enum PgChangeOperation
{
    /// <summary>A row was inserted; <see cref="PgChange.Data"/> holds it.</summary>
    Insert,

    /// <summary>A row was updated; <see cref="PgChange.Data"/> holds the new row, <see cref="PgChange.Old"/> the old one.</summary>
    Update,

    /// <summary>A row was deleted; <see cref="PgChange.Old"/> holds it.</summary>
    Delete,

    /// <summary>The table was truncated (one statement-level event, no row data).</summary>
    Truncate,
}
