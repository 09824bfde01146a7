using System.Globalization;
using System.Text.Json;

namespace PgNotify.Client.Internal;

/// <summary>
/// Reads one server frame (pure). For every input the answer is a frame or an error text, never an exception: bad
/// JSON, invalid UTF-8, wrong types, numbers out of range (1e400), escaped lone surrogates and deep nesting included.
/// </summary>
internal static class ServerFrameParser
{
    /// <summary>
    /// How deep a frame may nest. Rows nest as deep as PostgreSQL let them (jsonb), but reading a document costs time
    /// that grows faster than its depth (a 10,000-deep one takes seconds), which a hostile server could use to stall
    /// the client: a deeper frame is refused (and so becomes a resync), one of this depth reads in milliseconds.
    /// </summary>
    public const int MaxDepth = 1_000;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = MaxDepth };

    public static ServerFrame? Parse(ReadOnlySpan<byte> utf8, out string? error)
    {
        error = null;
        try
        {
            var reader = new Utf8JsonReader(utf8, ReaderOptions);
            var root = JsonElement.ParseValue(ref reader);
            if (reader.Read())
            {
                error = "text after the frame's JSON value";
                return null;
            }

            if (root.ValueKind != JsonValueKind.Object)
            {
                error = "not a JSON object";
                return null;
            }

            var type = String(root, "type");
            if (type is null)
            {
                error = "no 'type' string";
                return null;
            }

            return type switch
            {
                Protocol.FrameTypes.Change => Change(root, type, out error),
                Protocol.FrameTypes.Snapshot => Snapshot(root, type, out error),
                Protocol.FrameTypes.SnapshotEnd => SnapshotEnd(root, type, out error),
                _ => new ServerFrame
                {
                    Type = type,
                    Id = Id(root),
                    Lossless = root.TryGetProperty("lossless"u8, out var lossless) && lossless.ValueKind == JsonValueKind.True,
                    Position = Position(root),
                    Tables = Strings(root, "tables"),
                    Code = String(root, "code"),
                    Schema = String(root, "schema"),
                    Table = String(root, "table"),
                    Message = String(root, "message"),
                    Reason = String(root, "reason"),
                    Missed = Int64(root, "missed"),
                },
            };
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException or FormatException)
        {
            error = ex.GetType().Name + ": " + ex.Message;
            return null;
        }
    }

    private static ServerFrame? Change(JsonElement root, string type, out string? error)
    {
        error = null;
        var operation = String(root, "operation") switch
        {
            "INSERT" => PgChangeOperations.Insert,
            "UPDATE" => PgChangeOperations.Update,
            "DELETE" => PgChangeOperations.Delete,
            "TRUNCATE" => PgChangeOperations.Truncate,
            _ => PgChangeOperations.None,
        };
        var data = Row(root, "data");
        var old = Row(root, "old");
        if (String(root, "schema") is not { } schema || String(root, "table") is not { } table || operation == PgChangeOperations.None
            || data is { ValueKind: not JsonValueKind.Object } || old is { ValueKind: not JsonValueKind.Object }
            || (operation is PgChangeOperations.Insert or PgChangeOperations.Update && data is null)
            || (operation == PgChangeOperations.Delete && old is null))
        {
            error = "a change frame without schema, table, a known operation and the rows it needs as objects";
            return null;
        }

        return new ServerFrame
        {
            Type = type,
            Schema = schema,
            Table = table,
            Operation = operation,
            Data = data,
            Old = old,
            Xid = Int64(root, "xid"),
            Seq = Int64(root, "seq"),
            Timestamp = DateTimeOffset.TryParse(String(root, "ts"), CultureInfo.InvariantCulture, DateTimeStyles.None, out var ts) ? ts : null,
            Position = Position(root),
        };
    }

    private static ServerFrame? Snapshot(JsonElement root, string type, out string? error)
    {
        error = null;
        if (String(root, "schema") is not { } schema || String(root, "table") is not { } table
            || !root.TryGetProperty("rows"u8, out var rows) || rows.ValueKind != JsonValueKind.Array)
        {
            error = "a snapshot frame without schema, table and a rows array";
            return null;
        }

        var list = new List<JsonElement>(rows.GetArrayLength());
        foreach (var row in rows.EnumerateArray())
        {
            if (row.ValueKind != JsonValueKind.Object)
            {
                error = "a snapshot row that is not an object";
                return null;
            }

            list.Add(row);
        }

        return new ServerFrame { Type = type, Id = Id(root), Schema = schema, Table = table, Rows = list };
    }

    private static ServerFrame? SnapshotEnd(JsonElement root, string type, out string? error)
    {
        error = null;
        var key = Strings(root, "key");
        if (String(root, "schema") is not { } schema || String(root, "table") is not { } table || key is null || key.Count == 0
            || Int64(root, "count") is not { } count)
        {
            error = "a snapshot_end frame without schema, table, count and a key of column names";
            return null;
        }

        return new ServerFrame
        {
            Type = type,
            Id = Id(root),
            Schema = schema,
            Table = table,
            Count = count,
            Truncated = root.TryGetProperty("truncated"u8, out var truncated) && truncated.ValueKind == JsonValueKind.True,
            Key = key,
            Position = Position(root),
        };
    }

    private static JsonElement? Row(JsonElement root, string name) =>
        root.TryGetProperty(name, out var row) && row.ValueKind != JsonValueKind.Null ? row : null;

    /// <summary>A string property; null when absent, not a string, or not valid UTF-16 (an escaped lone surrogate).</summary>
    private static string? String(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>A frame's <c>position</c>, in either of its forms (a JSON integer, or a string of digits above 2^53 − 1).</summary>
    private static long? Position(JsonElement root) =>
        root.TryGetProperty("position"u8, out var value) && Protocol.Positions.TryRead(value, out var position) ? position : null;

    private static long? Int64(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : null;

    private static string? Id(JsonElement root)
    {
        if (!root.TryGetProperty("id"u8, out var id))
        {
            return null;
        }

        return id.ValueKind switch
        {
            JsonValueKind.String => String(root, "id"),
            JsonValueKind.Number => id.GetRawText(),
            _ => null,
        };
    }

    private static List<string>? Strings(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var list = new List<string>(array.GetArrayLength());
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            try
            {
                list.Add(item.GetString()!);
            }
            catch (InvalidOperationException)
            {
                return null;
            }
        }

        return list;
    }
}
