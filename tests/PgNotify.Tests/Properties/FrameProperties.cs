using System.Buffers;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// Properties of the frame encoder: for any change (rows the trigger writes, rows a forged notification brings) the
/// frame is JSON and decoding it gives the change back; error frames that echo client text are JSON for any text.
/// <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class FrameProperties
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly Gen<string> Name = Gen.String[1, 20].Where(s => !s.Any(char.IsSurrogate));

    /// <summary>Rows a forged notification can bring: any JSON, lone surrogate escapes and 1e400 included.</summary>
    private static readonly Gen<string> HostileRow = Gen.Frequency<string>(
        (6, Gen.Select(HostileJson.Key, HostileJson.Value(3)).Array[0, 5].Select(HostileJson.Object)),
        (1, HostileJson.Value(3)));

    private sealed record FrameCase(PgChange Change, bool IncludeOld, string Description);

    /// <summary>Changes as the trigger writes them (deep rows, timestamps), and changes with hostile rows (no timestamp).</summary>
    private static readonly Gen<FrameCase> Cases = Gen.Frequency(
        (1, Gen.Select(ChangeGen.Change, Gen.OneOf(Gen.Const((long?)null), Gen.Long.Select(p => (long?)p)), Gen.Bool).Select((c, position, includeOld) => new FrameCase(
            new PgChange(new PgTableName(c.Schema, c.Table), c.Operation, ChangeGen.Element(c.Data), ChangeGen.Element(c.Old), c.Xid, c.Seq, c.Ts, position, Now),
            includeOld, ChangeGen.Print(c) + ", position " + position))),
        (10, Gen.Select(Gen.Select(Name, Name, Gen.Enum<PgChangeOperation>()), HostileRow, HostileRow, Gen.Select(Gen.Long, Gen.Long[1, long.MaxValue], Gen.Long.Nullable(), Gen.Bool))
            .Select((names, dataText, oldText, numbers) => new FrameCase(
                new PgChange(new PgTableName(names.Item1, names.Item2), names.Item3, ChangeGen.Element(dataText), ChangeGen.Element(oldText), numbers.Item1, numbers.Item2, null, numbers.Item3, DateTimeOffset.UnixEpoch),
                numbers.Item4, $"data {dataText}, old {oldText}"))));

    [Fact]
    public void Change_AnyChange_EncodesToJsonThatDecodesToTheSameChange() =>
        Cases.Sample(item =>
        {
            var change = item.Change;
            var bytes = Frames.Change(change, new ArrayBufferWriter<byte>(256), item.IncludeOld); // CsCheck samples on several threads

            using var frame = JsonDocument.Parse(bytes, ChangeGen.Deep);
            var root = frame.RootElement;
            root.GetProperty("type").GetString().Should().Be("change");
            root.GetProperty("schema").GetString().Should().Be(change.Table.Schema);
            root.GetProperty("table").GetString().Should().Be(change.Table.Name);
            root.GetProperty("operation").GetString().Should().Be(change.Operation.ToString().ToUpperInvariant());
            root.GetProperty("xid").GetInt64().Should().Be(change.TransactionId);
            root.GetProperty("seq").GetInt64().Should().Be(change.Sequence);
            if (change.Timestamp is { } ts)
            {
                root.GetProperty("ts").GetDateTimeOffset().Should().Be(ts);
            }

            // Positions above 2^53 - 1 are strings of digits (docs/protocol.md, Positions); JSON integers below.
            if (root.TryGetProperty("position", out var p))
            {
                p.ValueKind.Should().Be(change.Position > 9007199254740991 ? JsonValueKind.String : JsonValueKind.Number);
                (p.ValueKind == JsonValueKind.String ? long.Parse(p.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : p.GetInt64())
                    .Should().Be(change.Position);
            }
            else
            {
                change.Position.Should().BeNull();
            }
            SameJson(root.TryGetProperty("data", out var data) ? data : null, change.Data).Should().BeTrue("data must be encoded whole");
            if (item.IncludeOld)
            {
                SameJson(root.TryGetProperty("old", out var old) ? old : null, change.Old).Should().BeTrue("old must be encoded whole");
            }
            else
            {
                root.TryGetProperty("old", out _).Should().BeFalse();
            }
        }, iter: 20_500, print: item => item.Description);

    /// <summary>A forged payload's row can carry any JSON string escape; encoding it must not throw or write invalid JSON.</summary>
    [Fact]
    public void Change_RowWithAnyStringContent_NeverThrowsAndWritesJson() =>
        JsonGen.ObjectValue.Sample(row =>
        {
            using var document = JsonDocument.Parse(row, ChangeGen.Deep);
            var change = new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, document.RootElement, null, 1, 1, Now, null, Now);
            using var _ = JsonDocument.Parse(Frames.Change(change, new ArrayBufferWriter<byte>()), ChangeGen.Deep);
        }, iter: 5_000);

    /// <summary>Error frames echo client text (a table name cut to 64 characters, an id): any string must give valid JSON.</summary>
    [Fact]
    public void ErrorFrame_AnyMessageText_NeverThrowsAndWritesJson() =>
        JsonGen.AnyText.Sample(text =>
        {
            var cut = text.Length > 64 ? text[..64] + "…" : text;
            using var _ = JsonDocument.Parse(Frames.Error(RequestId.None, "unknown_table", $"Table '{cut}' is not available."));
        }, iter: 5_000);

    /// <summary>Equal JSON; rows System.Text.Json cannot compare (lone surrogates) are sent as they came, byte for byte.</summary>
    private static bool SameJson(JsonElement? sent, JsonElement? original)
    {
        if (sent is not { } s || original is not { } o)
        {
            return sent is null && original is null;
        }

        try
        {
            return JsonElement.DeepEquals(s, o);
        }
        catch (InvalidOperationException)
        {
            return s.GetRawText() == o.GetRawText();
        }
    }
}
