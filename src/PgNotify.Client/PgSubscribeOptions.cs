using System.Text.Json.Nodes;

namespace PgNotify.Client;

/// <summary>What a subscription asks the server for (docs/protocol.md, "subscribe").</summary>
public sealed class PgSubscribeOptions
{
    /// <summary>
    /// Conditions on the row's columns, all of which must hold, evaluated by the server. A bare value means equality;
    /// an object gives an operator (<c>eq</c>, <c>neq</c>, <c>lt</c>, <c>lte</c>, <c>gt</c>, <c>gte</c>, <c>in</c>),
    /// e.g. <c>new JsonObject { ["user_id"] = 42, ["amount"] = new JsonObject { ["gte"] = 100 } }</c>.
    /// Default: <see langword="null"/> (every row).
    /// </summary>
    public JsonObject? Filter { get; init; }

    /// <summary>The operations to receive. Default: <see cref="PgChangeOperations.All"/>.</summary>
    public PgChangeOperations Operations { get; init; } = PgChangeOperations.All;

    /// <summary>
    /// Whether the server first sends the table's current rows (under the filter and authorization), then every later
    /// change, with no race: <see cref="PgSnapshotMessage"/> frames, then a <see cref="PgSnapshotEndMessage"/>.
    /// After a resync, and after a reconnect the server cannot resume, the client asks for a new snapshot itself.
    /// Default: <see langword="false"/>.
    /// </summary>
    public bool Snapshot { get; init; }

    /// <summary>
    /// With <see cref="Snapshot"/>: at most this many rows (the server also caps it, 10,000 by default).
    /// Default: <see langword="null"/> (the server's cap).
    /// </summary>
    public int? SnapshotLimit { get; init; }
}
