using System.Buffers;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>The change frame encoder for any row: the frame is JSON, and decoding it gives the change back.</summary>
public sealed class FramePropertyTests
{
    private static readonly Gen<string> Name = Gen.String[1, 20].Where(s => !s.Any(char.IsSurrogate));

    private static readonly Gen<string> Row = Gen.Frequency<string>(
        (6, Gen.Select(RowFilterPropertyTests.Key, RowFilterPropertyTests.Json(3)).Array[0, 5]
            .Select(members => "{" + string.Join(",", members.Select(m => m.Item1 + ":" + m.Item2)) + "}")),
        (1, RowFilterPropertyTests.Json(3)));

    [Fact]
    public void Change_AnyRow_EncodesToJsonThatDecodesToTheSameChange()
    {
        Gen.Select(Gen.Select(Name, Name, Gen.Enum<PgChangeOperation>()), Row, Row, Gen.Select(Gen.Long, Gen.Long[1, long.MaxValue], Gen.Long.Nullable(), Gen.Bool))
            .Sample((names, dataText, oldText, numbers) =>
            {
                var (schema, table, operation) = names;
                var (xid, seq, position, includeOld) = numbers;
                using var data = JsonDocument.Parse(dataText);
                using var old = JsonDocument.Parse(oldText);
                var change = new PgChange(new PgTableName(schema, table), operation, data.RootElement, old.RootElement, xid, seq, null, position, DateTimeOffset.UnixEpoch);

                var bytes = Frames.Change(change, new ArrayBufferWriter<byte>(256), includeOld); // CsCheck samples on several threads

                using var frame = JsonDocument.Parse(bytes);
                var root = frame.RootElement;
                root.GetProperty("type").GetString().Should().Be("change");
                root.GetProperty("schema").GetString().Should().Be(schema);
                root.GetProperty("table").GetString().Should().Be(table);
                root.GetProperty("operation").GetString().Should().Be(operation.ToString().ToUpperInvariant());
                root.GetProperty("xid").GetInt64().Should().Be(xid);
                root.GetProperty("seq").GetInt64().Should().Be(seq);
                (root.TryGetProperty("position", out var p) ? p.GetInt64() : (long?)null).Should().Be(position);
                SameJson(root.GetProperty("data"), data.RootElement).Should().BeTrue(dataText);
                if (includeOld)
                {
                    SameJson(root.GetProperty("old"), old.RootElement).Should().BeTrue(oldText);
                }
                else
                {
                    root.TryGetProperty("old", out _).Should().BeFalse();
                }
            }, iter: 20_000);
    }

    /// <summary>Equal JSON; rows System.Text.Json cannot compare (lone surrogates) are sent as they came, byte for byte.</summary>
    private static bool SameJson(JsonElement sent, JsonElement original)
    {
        try
        {
            return JsonElement.DeepEquals(sent, original);
        }
        catch (InvalidOperationException)
        {
            return sent.GetRawText() == original.GetRawText();
        }
    }
}
