using System.Text.Json;

namespace PgNotify.Internal;

/// <summary>A notification payload as the trigger wrote it: a whole change, or a reference to a parked large one.</summary>
internal readonly record struct PgChangePayload(PgChange? Change, long? LargePayloadId, bool IsWakeUp = false)
{
    /// <summary>Parses the trigger's JSON payload.</summary>
    /// <exception cref="FormatException">The payload is not one PgNotify's trigger writes.</exception>
    public static PgChangePayload Parse(string payload, DateTimeOffset receivedAt, long? position = null)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(payload);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"The notification payload is not JSON: {ex.Message}", ex);
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("The notification payload is not a JSON object.");
            }

            if (!root.TryGetProperty("v", out var version) || version.ValueKind != JsonValueKind.Number || version.GetInt32() != 1)
            {
                throw new FormatException("The notification payload has no supported version (\"v\":1).");
            }

            if (root.TryGetProperty("wake", out var wake) && wake.ValueKind == JsonValueKind.Number)
            {
                return new PgChangePayload(null, null, IsWakeUp: true);
            }

            if (root.TryGetProperty("ref", out var reference) && reference.ValueKind == JsonValueKind.Number)
            {
                return new PgChangePayload(null, reference.GetInt64());
            }

            var table = new PgTableName(RequiredString(root, "schema"), RequiredString(root, "table"));
            var operation = RequiredString(root, "op") switch
            {
                "INSERT" => PgChangeOperation.Insert,
                "UPDATE" => PgChangeOperation.Update,
                "DELETE" => PgChangeOperation.Delete,
                "TRUNCATE" => PgChangeOperation.Truncate,
                var other => throw new FormatException($"The notification payload has an unknown operation '{other}'."),
            };

            var change = new PgChange(
                table,
                operation,
                OptionalObject(root, "data"),
                OptionalObject(root, "old"),
                OptionalInt64(root, "xid") ?? 0,
                OptionalInt64(root, "seq") ?? 0,
                root.TryGetProperty("ts", out var ts) && ts.ValueKind == JsonValueKind.String && ts.TryGetDateTimeOffset(out var stamp) ? stamp : null,
                position ?? OptionalInt64(root, "pos"),
                receivedAt);
            return new PgChangePayload(change, null);
        }
    }

    private static string RequiredString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new FormatException($"The notification payload has no \"{name}\" string.");

    private static long? OptionalInt64(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetInt64() : null;

    private static JsonElement? OptionalObject(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value.Clone() : null;
}
