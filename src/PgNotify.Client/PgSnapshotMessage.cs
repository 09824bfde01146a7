using System.Text.Json;

namespace PgNotify.Client;

/// <summary>Some of the table's current rows (a snapshot subscription gets zero or more, then a <see cref="PgSnapshotEndMessage"/>).</summary>
public sealed class PgSnapshotMessage : PgNotifyMessage
{
    internal PgSnapshotMessage(string table, IReadOnlyList<JsonElement> rows)
        : base(table)
    {
        Rows = rows;
    }

    /// <summary>The rows, as JSON objects with the same values change frames carry.</summary>
    public IReadOnlyList<JsonElement> Rows { get; }
}
