using System.Buffers;
using System.Text.Json;

namespace PgNotify.Client.Internal;

/// <summary>Encodes the client's requests (docs/protocol.md, "Client → server").</summary>
internal static class Requests
{
    private static readonly (PgChangeOperations Flag, string Name)[] OperationNames =
    [
        (PgChangeOperations.Insert, "INSERT"),
        (PgChangeOperations.Update, "UPDATE"),
        (PgChangeOperations.Delete, "DELETE"),
        (PgChangeOperations.Truncate, "TRUNCATE"),
    ];

    public static byte[] Subscribe(string id, ClientSubscription subscription, long? since, bool snapshot) => Write(writer =>
    {
        writer.WriteString("type"u8, Protocol.RequestTypes.Subscribe);
        writer.WriteString("id"u8, id);
        writer.WriteStartArray("tables"u8);
        writer.WriteStringValue(subscription.Table);
        writer.WriteEndArray();
        var options = subscription.Options;
        if (options.Operations != PgChangeOperations.All)
        {
            writer.WriteStartArray("operations"u8);
            foreach (var (flag, name) in OperationNames)
            {
                if (options.Operations.HasFlag(flag))
                {
                    writer.WriteStringValue(name);
                }
            }

            writer.WriteEndArray();
        }

        if (options.Filter is { } filter)
        {
            writer.WritePropertyName("filter"u8);
            filter.WriteTo(writer);
        }

        if (since is { } position)
        {
            Protocol.Positions.Write(writer, "since"u8, position);
        }

        if (snapshot)
        {
            writer.WriteBoolean("snapshot"u8, true);
            if (options.SnapshotLimit is { } limit)
            {
                writer.WriteNumber("limit"u8, limit);
            }
        }
    });

    public static byte[] Unsubscribe(string id, ClientSubscription subscription) => Write(writer =>
    {
        writer.WriteString("type"u8, Protocol.RequestTypes.Unsubscribe);
        writer.WriteString("id"u8, id);
        writer.WriteStartArray("tables"u8);
        writer.WriteStringValue(subscription.Table);
        writer.WriteEndArray();
    });

    public static byte[] Ping(string id) => Write(writer =>
    {
        writer.WriteString("type"u8, Protocol.RequestTypes.Ping);
        writer.WriteString("id"u8, id);
    });

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
