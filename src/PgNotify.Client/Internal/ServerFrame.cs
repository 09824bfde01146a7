using System.Text.Json;

namespace PgNotify.Client.Internal;

/// <summary>One frame from the server, read and type-checked by <see cref="ServerFrameParser"/>; fields a type does not use are null.</summary>
internal sealed class ServerFrame
{
    public required string Type { get; init; }

    /// <summary>The request id the frame answers, as text (<c>null</c> for none).</summary>
    public string? Id { get; init; }

    public bool Lossless { get; init; }

    public long? Position { get; init; }

    public IReadOnlyList<string>? Tables { get; init; }

    public string? Code { get; init; }

    public string? Message { get; init; }

    public string? Reason { get; init; }

    public long? Missed { get; init; }

    public string? Schema { get; init; }

    public string? Table { get; init; }

    public PgChangeOperations Operation { get; init; }

    public JsonElement? Data { get; init; }

    public JsonElement? Old { get; init; }

    public long? Xid { get; init; }

    public long? Seq { get; init; }

    public DateTimeOffset? Timestamp { get; init; }

    public IReadOnlyList<JsonElement>? Rows { get; init; }

    public long Count { get; init; }

    public bool Truncated { get; init; }

    public IReadOnlyList<string>? Key { get; init; }

    /// <summary><c>schema.table</c>, the key subscriptions are found by.</summary>
    public string? QualifiedTable => Schema is null || Table is null ? null : TableNames.Qualify(Schema, Table);
}
