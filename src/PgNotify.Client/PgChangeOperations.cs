namespace PgNotify.Client;

/// <summary>The operations a subscription receives, and the operation of a <see cref="PgChangeMessage"/>.</summary>
[Flags]
public enum PgChangeOperations
{
    /// <summary>No operation (never the operation of a change).</summary>
    None = 0,

    /// <summary>A row was inserted: <see cref="PgChangeMessage.Data"/> holds it.</summary>
    Insert = 1,

    /// <summary>A row was updated: <see cref="PgChangeMessage.Data"/> holds the new row, <see cref="PgChangeMessage.Old"/> the old one.</summary>
    Update = 2,

    /// <summary>A row was deleted: <see cref="PgChangeMessage.Old"/> holds it.</summary>
    Delete = 4,

    /// <summary>The table was truncated: no row.</summary>
    Truncate = 8,

    /// <summary>Every operation (the default of <see cref="PgSubscribeOptions.Operations"/>).</summary>
    All = Insert | Update | Delete | Truncate,
}
