using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;

namespace PgNotify.Tests.Properties;

/// <summary>A change as the trigger writes it; rows are JSON text.</summary>
internal sealed record TriggerChange(string Schema, string Table, PgChangeOperation Operation, long Xid, long Seq, DateTimeOffset Ts, string? Data, string? Old);

/// <summary>CsCheck generators of changes as the trigger writes them, and their payload text, for the payload and frame properties.</summary>
internal static class ChangeGen
{
    public static readonly JsonDocumentOptions Deep = new() { MaxDepth = 4_096 };

    private static readonly Gen<string> Identifier =
        JsonGen.ValidText.Where(s => s.Length > 0 && Encoding.UTF8.GetByteCount(s) <= PgTableName.MaxIdentifierBytes);

    /// <summary>A row PostgreSQL could hold: valid strings, finite numbers, nested up to 1,500 levels now and then.</summary>
    private static readonly Gen<string> RowValue = Gen.Recursive<string>((depth, self) => depth >= 3
        ? Gen.OneOf(Gen.Long.Select(n => n.ToString(CultureInfo.InvariantCulture)), JsonGen.ValidText.Select(JsonGen.Literal), Gen.OneOf("true", "false", "null"))
        : Gen.Frequency(
            (4, Gen.OneOf(Gen.Long.Select(n => n.ToString(CultureInfo.InvariantCulture)), JsonGen.ValidText.Select(JsonGen.Literal))),
            (1, self.Array[0, 3].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(JsonGen.ValidText, self).Array[0, 3].Select(fields => JsonGen.Object(Unique(fields))))));

    /// <summary>A row's object has each key once (to_jsonb never repeats one), so that parsed rows compare as JSON.</summary>
    private static (string Key, string Value)[] Unique((string Key, string Value)[] fields) =>
        [.. fields.DistinctBy(f => f.Key, StringComparer.Ordinal)];

    private static readonly Gen<string> Row = Gen.Select(Gen.Select(JsonGen.ValidText, RowValue).Array[0, 5], Gen.Int[0, 1_500], Gen.Int[0, 4])
        .Select((fields, depth, deepOne) => JsonGen.Object(Unique(deepOne == 0 ? [("deep", JsonGen.Nested(depth)), .. fields] : fields)));

    public static readonly Gen<TriggerChange> Change = Gen.Select(Identifier, Identifier, Gen.Enum<PgChangeOperation>(), Gen.Long[0, long.MaxValue], Gen.Long[0, long.MaxValue], Gen.DateTimeOffset, Row, Row)
        .Select((schema, table, op, xid, seq, ts, data, old) => new TriggerChange(schema, table, op, xid, seq, ts,
            op is PgChangeOperation.Insert or PgChangeOperation.Update ? data : null,
            op is PgChangeOperation.Update or PgChangeOperation.Delete ? old : null));

    /// <summary>The payload as json_build_object writes it.</summary>
    public static string Payload(TriggerChange change)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { MaxDepth = 4_096 }))
        {
            w.WriteStartObject();
            w.WriteNumber("v", 1);
            w.WriteString("schema", change.Schema);
            w.WriteString("table", change.Table);
            w.WriteString("op", change.Operation.ToString().ToUpperInvariant());
            w.WriteNumber("xid", change.Xid);
            w.WriteNumber("seq", change.Seq);
            w.WriteString("ts", change.Ts);
            w.WritePropertyName("data");
            w.WriteRawValue(change.Data ?? "null", skipInputValidation: true);
            w.WritePropertyName("old");
            w.WriteRawValue(change.Old ?? "null", skipInputValidation: true);
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>A counterexample short enough to read: the row's nesting depth and size, not the row.</summary>
    public static string Print(TriggerChange change) =>
        $"{change.Operation} {JsonGen.Literal(change.Schema)}.{JsonGen.Literal(change.Table)} xid {change.Xid} seq {change.Seq} ts {change.Ts:O}, " +
        $"data: {Shape(change.Data)}, old: {Shape(change.Old)}";

    public static JsonElement? Element(string? json) => json is null ? null : JsonDocument.Parse(json, Deep).RootElement.Clone();

    public static bool SameJson(JsonElement? actual, string? expected) =>
        expected is null ? actual is null : actual is { } value && JsonElement.DeepEquals(value, JsonDocument.Parse(expected, Deep).RootElement);

    private static string Shape(string? json)
    {
        if (json is null)
        {
            return "null";
        }

        int depth = 0, max = 0;
        foreach (var c in json)
        {
            depth += c is '{' or '[' ? 1 : c is '}' or ']' ? -1 : 0;
            max = Math.Max(max, depth);
        }

        return json.Length <= 200 ? json : $"{json.Length} chars nested about {max} levels deep, starting {json[..120]}…";
    }
}
