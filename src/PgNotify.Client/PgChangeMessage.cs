using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace PgNotify.Client;

/// <summary>A row change (docs/protocol.md, "change").</summary>
public sealed class PgChangeMessage : PgNotifyMessage
{
    internal PgChangeMessage(string table, string schema, string tableName, PgChangeOperations operation, JsonElement? data, JsonElement? old, long? xid, long? seq, DateTimeOffset? timestamp, long? position)
        : base(table)
    {
        Schema = schema;
        TableName = tableName;
        Operation = operation;
        Data = data;
        Old = old;
        Xid = xid;
        Seq = seq;
        Timestamp = timestamp;
        Position = position;
    }

    /// <summary>The table's schema, as the server sent it.</summary>
    public string Schema { get; }

    /// <summary>The table's name without its schema, as the server sent it.</summary>
    public string TableName { get; }

    /// <summary>Exactly one of Insert, Update, Delete or Truncate.</summary>
    public PgChangeOperations Operation { get; }

    /// <summary>The row after the change (Insert, Update), as a JSON object.</summary>
    public JsonElement? Data { get; }

    /// <summary>The row before the change (Update, Delete), as a JSON object; left out of an Update when the server's authorization hides it.</summary>
    public JsonElement? Old { get; }

    /// <summary>The PostgreSQL transaction id.</summary>
    public long? Xid { get; }

    /// <summary>The change's number within its transaction.</summary>
    public long? Seq { get; }

    /// <summary>When the trigger ran.</summary>
    public DateTimeOffset? Timestamp { get; }

    /// <summary>With lossless delivery: the change's position in the change log.</summary>
    public long? Position { get; }

    /// <summary>Deserialises <see cref="Data"/> (reflection-free with a source-generated <c>JsonSerializerContext</c>'s type info).</summary>
    /// <typeparam name="T">The row type.</typeparam>
    /// <param name="typeInfo">E.g. <c>MyJsonContext.Default.Profile</c>.</param>
    /// <returns>The row, or <see langword="default"/> when there is none.</returns>
    /// <exception cref="JsonException">The row does not fit <typeparamref name="T"/>.</exception>
    public T? GetData<T>(JsonTypeInfo<T> typeInfo) => Data is { } row ? row.Deserialize(typeInfo) : default;

    /// <summary>Deserialises <see cref="Old"/>, as <see cref="GetData{T}"/> does <see cref="Data"/>.</summary>
    /// <typeparam name="T">The row type.</typeparam>
    /// <param name="typeInfo">E.g. <c>MyJsonContext.Default.Profile</c>.</param>
    /// <returns>The old row, or <see langword="default"/> when there is none.</returns>
    /// <exception cref="JsonException">The row does not fit <typeparamref name="T"/>.</exception>
    public T? GetOld<T>(JsonTypeInfo<T> typeInfo) => Old is { } row ? row.Deserialize(typeInfo) : default;
}
