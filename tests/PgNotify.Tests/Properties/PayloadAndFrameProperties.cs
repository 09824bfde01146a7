using System.Buffers;
using System.Text;
using System.Text.Json;
using CsCheck;
using PgNotify.Internal;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// Properties of the pure pieces a change goes through: the trigger payload parser and the frame encoder. A failure
/// prints CsCheck's shrunk counterexample and its seed; <c>CsCheck_Seed=&lt;seed&gt;</c> replays it.
/// </summary>
public sealed class PayloadAndFrameProperties
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly JsonDocumentOptions Deep = new() { MaxDepth = 4_096 };

    private static readonly Gen<string> Identifier =
        JsonGen.ValidText.Where(s => s.Length > 0 && Encoding.UTF8.GetByteCount(s) <= PgTableName.MaxIdentifierBytes);

    /// <summary>A row PostgreSQL could hold: valid strings, finite numbers, nested up to 1,500 levels now and then.</summary>
    private static readonly Gen<string> RowValue = Gen.Recursive<string>((depth, self) => depth >= 3
        ? Gen.OneOf(Gen.Long.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), JsonGen.ValidText.Select(JsonGen.Literal), Gen.OneOf("true", "false", "null"))
        : Gen.Frequency(
            (4, Gen.OneOf(Gen.Long.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), JsonGen.ValidText.Select(JsonGen.Literal))),
            (1, self.Array[0, 3].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(JsonGen.ValidText, self).Array[0, 3].Select(JsonGen.Object))));

    private static readonly Gen<string> Row = Gen.Select(Gen.Select(JsonGen.ValidText, RowValue).Array[0, 5], Gen.Int[0, 1_500], Gen.Int[0, 4])
        .Select((fields, depth, deepOne) => JsonGen.Object(deepOne == 0 ? [.. fields, ("deep", JsonGen.Nested(depth))] : fields));

    private sealed record TriggerChange(string Schema, string Table, PgChangeOperation Operation, long Xid, long Seq, DateTimeOffset Ts, string? Data, string? Old);

    private static readonly Gen<TriggerChange> Change = Gen.Select(Identifier, Identifier, Gen.Enum<PgChangeOperation>(), Gen.Long[0, long.MaxValue], Gen.Long[0, long.MaxValue], Gen.DateTimeOffset, Row, Row)
        .Select((schema, table, op, xid, seq, ts, data, old) => new TriggerChange(schema, table, op, xid, seq, ts,
            op is PgChangeOperation.Insert or PgChangeOperation.Update ? data : null,
            op is PgChangeOperation.Update or PgChangeOperation.Delete ? old : null));

    /// <summary>Payloads shaped like the trigger's, with any field forged: the listener's real attack surface.</summary>
    private static readonly Gen<string> ForgedPayload = Gen.Frequency(
        (4, Gen.Select(Gen.OneOf(Gen.Const("\"public\""), JsonGen.Scalar), Gen.OneOf(Gen.Const("\"t\""), JsonGen.Scalar, Gen.Int[0, 300].Select(n => "\"" + new string('n', n) + "\"")),
                Gen.OneOf(Gen.OneOf("\"INSERT\"", "\"UPDATE\"", "\"DELETE\"", "\"TRUNCATE\""), JsonGen.Scalar), JsonGen.Scalar, JsonGen.Value, JsonGen.Value)
            .Select((schema, table, op, xid, data, old) => $"{{\"v\":1,\"schema\":{schema},\"table\":{table},\"op\":{op},\"xid\":{xid},\"seq\":1,\"ts\":\"2026-12-01T00:00:00Z\",\"data\":{data},\"old\":{old}}}")),
        (1, JsonGen.Scalar.Select(r => $"{{\"v\":1,\"ref\":{r}}}")),
        (1, JsonGen.Scalar.Select(w => $"{{\"v\":{w},\"wake\":{w}}}")),
        (2, JsonGen.Text));

    [Fact]
    public void Parse_AnyText_ReturnsOrThrowsFormatException() =>
        ForgedPayload.Sample(payload =>
        {
            try
            {
                PgChangePayload.Parse(payload, Now);
            }
            catch (FormatException)
            {
                // The documented refusal: the listener logs and drops the payload.
            }
        }, iter: 20_000);

    [Fact]
    public void Parse_TriggerShapedPayload_GivesBackTheChange() =>
        Change.Sample(expected =>
        {
            var payload = TriggerPayload(expected);
            var change = PgChangePayload.Parse(payload, Now).Change!;
            change.Table.Should().Be(new PgTableName(expected.Schema, expected.Table));
            change.Operation.Should().Be(expected.Operation);
            change.TransactionId.Should().Be(expected.Xid);
            change.Sequence.Should().Be(expected.Seq);
            change.Timestamp.Should().Be(expected.Ts);
            SameJson(change.Data, expected.Data).Should().BeTrue("data must come back whole");
            SameJson(change.Old, expected.Old).Should().BeTrue("old must come back whole");
        }, iter: 500, print: Print);

    [Fact]
    public void FrameEncoder_AnyChange_DecodesToTheSameChange() =>
        Gen.Select(Change, Gen.OneOf(Gen.Const((long?)null), Gen.Long.Select(p => (long?)p))).Sample((expected, position) =>
        {
            var change = new PgChange(new PgTableName(expected.Schema, expected.Table), expected.Operation, Element(expected.Data), Element(expected.Old),
                expected.Xid, expected.Seq, expected.Ts, position, Now);
            using var frame = JsonDocument.Parse(Frames.Change(change, new ArrayBufferWriter<byte>()), Deep);
            var root = frame.RootElement;
            root.GetProperty("type").GetString().Should().Be("change");
            root.GetProperty("schema").GetString().Should().Be(expected.Schema);
            root.GetProperty("table").GetString().Should().Be(expected.Table);
            root.GetProperty("operation").GetString().Should().Be(expected.Operation.ToString().ToUpperInvariant());
            root.GetProperty("xid").GetInt64().Should().Be(expected.Xid);
            root.GetProperty("seq").GetInt64().Should().Be(expected.Seq);
            root.GetProperty("ts").GetDateTimeOffset().Should().Be(expected.Ts);
            (root.TryGetProperty("position", out var p) ? p.GetInt64() : (long?)null).Should().Be(position);
            SameJson(root.TryGetProperty("data", out var data) ? data : null, expected.Data).Should().BeTrue("data must be encoded whole");
            SameJson(root.TryGetProperty("old", out var old) ? old : null, expected.Old).Should().BeTrue("old must be encoded whole");
        }, iter: 500, print: t => Print(t.Item1) + ", position " + t.Item2);

    /// <summary>A forged payload's row can carry any JSON string escape; encoding it must not throw or write invalid JSON.</summary>
    [Fact]
    public void FrameEncoder_RowWithAnyStringContent_NeverThrowsAndWritesJson() =>
        JsonGen.ObjectValue.Sample(row =>
        {
            using var document = JsonDocument.Parse(row, Deep);
            var change = new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, document.RootElement, null, 1, 1, Now, null, Now);
            using var _ = JsonDocument.Parse(Frames.Change(change, new ArrayBufferWriter<byte>()), Deep);
        }, iter: 5_000);

    /// <summary>Error frames echo client text (a table name cut to 64 characters, an id): any string must give valid JSON.</summary>
    [Fact]
    public void ErrorFrame_AnyMessageText_NeverThrowsAndWritesJson() =>
        JsonGen.AnyText.Sample(text =>
        {
            var cut = text.Length > 64 ? text[..64] + "…" : text;
            using var _ = JsonDocument.Parse(Frames.Error(RequestId.None, "unknown_table", $"Table '{cut}' is not available."));
        }, iter: 5_000);

    /// <summary>A counterexample short enough to read: the row's nesting depth and size, not the row.</summary>
    private static string Print(TriggerChange change) =>
        $"{change.Operation} {JsonGen.Literal(change.Schema)}.{JsonGen.Literal(change.Table)} xid {change.Xid} seq {change.Seq} ts {change.Ts:O}, " +
        $"data: {Shape(change.Data)}, old: {Shape(change.Old)}";

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

    private static string TriggerPayload(TriggerChange change)
    {
        // As json_build_object writes it.
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

    private static JsonElement? Element(string? json) => json is null ? null : JsonDocument.Parse(json, Deep).RootElement.Clone();

    private static bool SameJson(JsonElement? actual, string? expected) =>
        expected is null ? actual is null : actual is { } value && JsonElement.DeepEquals(value, JsonDocument.Parse(expected, Deep).RootElement);
}
