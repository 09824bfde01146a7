using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;
using PgNotify.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// <see cref="PgChangePayload.Parse"/> reads text that any role can send with NOTIFY. Properties: for every string it
/// returns a result or throws its documented <see cref="FormatException"/>, nothing else; and what the trigger writes
/// comes back whole. A failure prints CsCheck's shrunk counterexample and its seed; <c>CsCheck_Seed=&lt;seed&gt;</c> replays it.
/// </summary>
public sealed class PayloadProperties
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Payloads shaped like the trigger's, with any field forged: the listener's real attack surface.</summary>
    private static readonly Gen<string> ForgedPayload = Gen.Frequency(
        (4, Gen.Select(Gen.OneOf(Gen.Const("\"public\""), JsonGen.Scalar), Gen.OneOf(Gen.Const("\"t\""), JsonGen.Scalar, Gen.Int[0, 300].Select(n => "\"" + new string('n', n) + "\"")),
                Gen.OneOf(Gen.OneOf("\"INSERT\"", "\"UPDATE\"", "\"DELETE\"", "\"TRUNCATE\""), JsonGen.Scalar), JsonGen.Scalar, JsonGen.Value, JsonGen.Value)
            .Select((schema, table, op, xid, data, old) => $"{{\"v\":1,\"schema\":{schema},\"table\":{table},\"op\":{op},\"xid\":{xid},\"seq\":1,\"ts\":\"2026-12-01T00:00:00Z\",\"data\":{data},\"old\":{old}}}")),
        (1, JsonGen.Scalar.Select(r => $"{{\"v\":1,\"ref\":{r}}}")),
        (1, JsonGen.Scalar.Select(w => $"{{\"v\":{w},\"wake\":{w}}}")),
        (2, JsonGen.Text));

    /// <summary>What the trigger writes with up to three fields replaced by JSON of any type.</summary>
    private static readonly Gen<string> FieldOfAnyType = Gen.Int.Select(seed =>
    {
        var random = new Random(seed);
        var payload = TriggerPayload(random);
        string[] fields = ["v", "schema", "table", "op", "xid", "seq", "ts", "data", "old", "ref", "wake", "pos"];
        for (var i = random.Next(1, 4); i > 0; i--)
        {
            payload[fields[random.Next(fields.Length)]] = RandomJson(random, 0);
        }

        return Text(payload);
    });

    /// <summary>What the trigger writes, with characters cut, inserted or replaced.</summary>
    private static readonly Gen<string> Mutated = Gen.Int.Select(seed =>
    {
        var random = new Random(seed);
        return Mutate(Text(TriggerPayload(random)), random);
    });

    private static readonly Gen<string> AnyPayload = Gen.Frequency(
        (2, ForgedPayload),
        (2, Gen.String),
        (2, Gen.String["{}[]\":,.-+eE0123456789 vtrufalsnu\\d8c0xschemaopdata"]),
        (1, Mutated),
        (1, FieldOfAnyType));

    /// <summary>What the trigger writes, from two generators: CsCheck's (deep rows, any timestamp) and one of huge numbers, emoji and escapes.</summary>
    private static readonly Gen<(TriggerChange Expected, string Payload)> Written = Gen.Frequency(
        (1, ChangeGen.Change.Select(c => (c, ChangeGen.Payload(c)))),
        (4, Gen.Int.Select(seed =>
        {
            var written = TriggerPayload(new Random(seed));
            var expected = new TriggerChange(
                Node(written["schema"])!.GetValue<string>(), Node(written["table"])!.GetValue<string>(),
                Enum.Parse<PgChangeOperation>(Node(written["op"])!.GetValue<string>(), ignoreCase: true),
                long.Parse(written["xid"], CultureInfo.InvariantCulture), long.Parse(written["seq"], CultureInfo.InvariantCulture),
                DateTimeOffset.Parse(Node(written["ts"])!.GetValue<string>(), CultureInfo.InvariantCulture),
                written["data"] == "null" ? null : written["data"], written["old"] == "null" ? null : written["old"]);
            return (expected, Text(written));
        })));

    [Fact]
    public void Parse_AnyText_ReturnsOrThrowsFormatException() =>
        AnyPayload.Sample(payload =>
        {
            try
            {
                _ = PgChangePayload.Parse(payload, Now);
            }
            catch (FormatException)
            {
                // The documented refusal: the listener logs and drops the payload.
            }
        }, iter: 80_000);

    [Fact]
    public void Parse_WhatTheTriggerWrites_GivesBackTheChange() =>
        Written.Sample(item =>
        {
            var (expected, payload) = item;
            var change = PgChangePayload.Parse(payload, Now).Change!;
            change.Table.Should().Be(new PgTableName(expected.Schema, expected.Table));
            change.Operation.Should().Be(expected.Operation);
            change.TransactionId.Should().Be(expected.Xid);
            change.Sequence.Should().Be(expected.Seq);
            change.Timestamp.Should().Be(expected.Ts);
            Same(change.Data, expected.Data).Should().BeTrue("data must come back whole");
            Same(change.Old, expected.Old).Should().BeTrue("old must come back whole");
        }, iter: 5_500, print: item => ChangeGen.Print(item.Expected));

    [Fact]
    public void Parse_RepeatedOrEscapedFieldNames_ReadAsJsonDocumentReadThem()
    {
        // A forged payload may repeat a field or spell its name with escapes. The one-pass reader must take the same
        // value JsonDocument (the parser before it) took, or refuse with a FormatException.
        string[] forged =
        [
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"data":{"a":1},"data":{"a":2},"old":null}""",
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"d\u0061ta":{"a":3}}""",
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"data":[1],"data":{"a":4}}""",
        ];
        foreach (var payload in forged)
        {
            using var document = JsonDocument.Parse(payload);
            var expected = document.RootElement.GetProperty("data").GetRawText();
            Encoding.UTF8.GetString(PgChangePayload.Parse(payload, Now).Change!.DataUtf8).Should().Be(expected, payload);
        }

        string[] refused =
        [
            """{"v":1,"schema":"public","table":"t","op":"INSERT","op":"DELETE","xid":1,"seq":1,"data":{"a":1}}""",
            """{"v":1,"v":"1","schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"data":{"a":1}}""",
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"xid":1e400,"seq":1,"data":{"a":1}}""",
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"data":{"a":1},"data":"{}"}""",
            """{"v":1,"schema":"public","table":"t","op":"INSERT","xid":1,"seq":1,"data":{"a":1}} {}""",
        ];
        foreach (var payload in refused)
        {
            FluentActions.Invoking(() => PgChangePayload.Parse(payload, Now)).Should().Throw<FormatException>(payload);
        }
    }

    [Fact]
    public void Parse_RowNestedDeeperThanJsonDefaults_ArrivesWhole()
    {
        foreach (var depth in new[] { 65, 1_001, 20_000, 100_000 })
        {
            var row = "{\"j\":" + new string('[', depth) + new string(']', depth) + "}";
            var payload = "{\"v\":1,\"schema\":\"public\",\"table\":\"t\",\"op\":\"INSERT\",\"xid\":1,\"seq\":1,\"data\":" + row + ",\"old\":null}";
            var change = PgChangePayload.Parse(payload, Now).Change!;
            change.Data!.Value.GetRawText().Should().Be(row);
        }
    }

    private static readonly System.Text.Json.JsonDocumentOptions DeepNodes = new() { MaxDepth = 100_000 };

    private static System.Text.Json.Nodes.JsonNode? Node(string raw) => System.Text.Json.Nodes.JsonNode.Parse(raw, documentOptions: DeepNodes);

    /// <summary>Equal JSON (numbers such as 1e400 compared as JSON nodes do).</summary>
    private static bool Same(JsonElement? parsed, string? written) =>
        written is null ? parsed is null : parsed is { } p && System.Text.Json.Nodes.JsonNode.DeepEquals(Node(p.GetRawText()), Node(written));

    private static string Text(Dictionary<string, string> members) => "{" + string.Join(",", members.Select(m => "\"" + m.Key + "\":" + m.Value)) + "}";

    private static string Str(string value) => "\"" + JsonEncodedText.Encode(value).Value + "\"";

    /// <summary>A payload shaped as the trigger's json_build_object writes it: member name to raw JSON, in its order.</summary>
    private static Dictionary<string, string> TriggerPayload(Random random)
    {
        string[] ops = ["INSERT", "UPDATE", "DELETE", "TRUNCATE"];
        var op = ops[random.Next(ops.Length)];
        return new Dictionary<string, string>
        {
            ["v"] = "1",
            ["schema"] = Str(Identifier(random)),
            ["table"] = Str(Identifier(random)),
            ["op"] = Str(op),
            ["xid"] = random.NextInt64(0, long.MaxValue).ToString(CultureInfo.InvariantCulture),
            ["seq"] = random.NextInt64(1, long.MaxValue).ToString(CultureInfo.InvariantCulture),
            ["ts"] = Str(Now.AddSeconds(random.Next()).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffffzzz", CultureInfo.InvariantCulture)),
            ["data"] = op is "INSERT" or "UPDATE" ? Row(random) : "null",
            ["old"] = op is "UPDATE" or "DELETE" ? Row(random) : "null",
        };
    }

    private static string Identifier(Random random)
    {
        // 1 to 63 bytes of valid Unicode, as PostgreSQL stores a name.
        while (true)
        {
            var text = ValidString(random, random.Next(1, 40));
            if (text.Length > 0 && Encoding.UTF8.GetByteCount(text) <= 63 && !text.Contains('\0', StringComparison.Ordinal))
            {
                return text;
            }
        }
    }

    private static string Row(Random random)
    {
        var members = Enumerable.Range(0, random.Next(0, 6))
            .Select(i => Str(ValidString(random, random.Next(1, 10)) + i.ToString(CultureInfo.InvariantCulture)) + ":" + RandomJson(random, 0, validOnly: true));
        return "{" + string.Join(",", members) + "}";
    }

    private static string ValidString(Random random, int length)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            var c = (char)random.Next(1, 0xD800);
            sb.Append(random.Next(4) == 0 ? "😀" : c.ToString());
        }

        return sb.ToString();
    }

    /// <summary>JSON of every shape: huge and fractional numbers, escapes, lone surrogates, deep nesting.</summary>
    private static string RandomJson(Random random, int depth, bool validOnly = false)
    {
        switch (random.Next(depth > 3 ? 7 : 10))
        {
            case 0: return "null";
            case 1: return random.Next(2) == 0 ? "true" : "false";
            case 2:
                string[] numbers = ["0", "-1", "1", "1.5", "1e400", "-1e400", "123456789012345678901234567890", "9223372036854775807", "9223372036854775808", "1E2", "-0"];
                return numbers[random.Next(numbers.Length)];
            case 3: return random.NextInt64().ToString(CultureInfo.InvariantCulture);
            case 4:
                string[] escapes = validOnly ? ["\\n", "\\\"", "\\u00e9", "\\ud83d\\ude00", "x"] : ["\\ud800", "\\udc00", "\\u0000", "\\n", "\\ud83d\\ude00", "x", "\\uD800\\u0041"];
                return "\"" + escapes[random.Next(escapes.Length)] + JsonEncodedText.Encode(ValidString(random, random.Next(0, 8))) + "\"";
            case 5:
                var levels = random.Next(4) == 0 ? random.Next(60, 1_200) : random.Next(1, 5);
                return new string('[', levels) + new string(']', levels);
            case 6: return "\"" + JsonEncodedText.Encode(ValidString(random, random.Next(0, 20))) + "\"";
            case 7:
            case 8:
                var items = Enumerable.Range(0, random.Next(0, 4)).Select(_ => RandomJson(random, depth + 1, validOnly));
                return "[" + string.Join(",", items) + "]";
            default:
                var members = Enumerable.Range(0, random.Next(0, 4))
                    .Select(i => "\"" + JsonEncodedText.Encode(ValidString(random, 3)) + i.ToString(CultureInfo.InvariantCulture) + "\":" + RandomJson(random, depth + 1, validOnly));
                return "{" + string.Join(",", members) + "}";
        }
    }

    private const string Syntax = "\"{}[],:\\-1eE\ud800";

    private static string Mutate(string text, Random random)
    {
        var sb = new StringBuilder(text);
        for (var i = random.Next(1, 4); i > 0 && sb.Length > 0; i--)
        {
            var at = random.Next(sb.Length);
            switch (random.Next(4))
            {
                case 0: sb.Remove(at, Math.Min(random.Next(1, 10), sb.Length - at)); break;
                case 1: sb.Insert(at, Syntax[random.Next(Syntax.Length)]); break;
                case 2: sb[at] = (char)random.Next(0, 0x10000); break;
                default: sb.Insert(at, RandomJson(random, 2)); break;
            }
        }

        return sb.ToString();
    }
}
