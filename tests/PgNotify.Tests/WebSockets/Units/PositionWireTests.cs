using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.WebSockets.Units;

/// <summary>
/// How positions go over the wire (docs/protocol.md, "Positions"): a JSON integer up to 2^53 − 1, a string of digits
/// above it, in every frame that carries one; and which <c>since</c> a subscribe request may carry.
/// </summary>
public sealed class PositionWireTests
{
    private static readonly PgTableName Table = new("public", "t");

    public static TheoryData<long, string> Forms() => new()
    {
        { 0, "0" },
        { 1234, "1234" },
        { 9007199254740991, "9007199254740991" },
        { 9007199254740992, "\"9007199254740992\"" },
        { 9007199254740993, "\"9007199254740993\"" },
        { (0x40L << 32 << 16) + 1, "\"18014398509481985\"" },
        { long.MaxValue, "\"9223372036854775807\"" },
    };

    [Theory]
    [MemberData(nameof(Forms))]
    public void EveryFrameWithAPosition_WritesAnIntegerUpTo2Pow53Minus1_AndAStringAbove(long position, string expected)
    {
        using var row = JsonDocument.Parse("{\"id\":1}");
        var change = new PgChange(Table, PgChangeOperation.Insert, row.RootElement, null, 7, 1, null, position, DateTimeOffset.UnixEpoch);
        var frames = new[]
        {
            Frames.Change(change, new ArrayBufferWriter<byte>()),
            Frames.TablesAck(Protocol.FrameTypes.Subscribed, RequestId.None, [Table], position: position),
            Frames.SnapshotEnd(RequestId.None, Table, 0, false, ["id"], position),
        };

        foreach (var frame in frames)
        {
            var text = Encoding.UTF8.GetString(frame);
            text.Should().Contain("\"position\":" + expected + (text.StartsWith("{\"type\":\"change\"", StringComparison.Ordinal) ? ",\"xid\"" : "}"));
            using var parsed = JsonDocument.Parse(frame);
            Protocol.Positions.TryRead(parsed.RootElement.GetProperty("position"), out var read).Should().BeTrue();
            read.Should().Be(position);
        }
    }

    [Fact]
    public void AnyPosition_IsAnIntegerExactlyWhenAJavaScriptNumberHoldsIt_AndReadsBackTheSame()
    {
        Gen.Frequency((1, Gen.Long[0, long.MaxValue]), (1, Gen.Long[9007199254740900, 9007199254741100]), (1, Gen.Long[0, 1000])).Sample(position =>
        {
            var json = Encoding.UTF8.GetString(Frames.TablesAck(Protocol.FrameTypes.Subscribed, RequestId.None, [Table], position: position));
            using var parsed = JsonDocument.Parse(json);
            var element = parsed.RootElement.GetProperty("position");
            element.ValueKind.Should().Be(position <= 9007199254740991 ? JsonValueKind.Number : JsonValueKind.String);
            var digits = element.ValueKind == JsonValueKind.String ? element.GetString()! : element.GetRawText();
            digits.Should().Be(position.ToString(CultureInfo.InvariantCulture), "decimal digits, no sign, no leading zero");
            Protocol.Positions.TryRead(element, out var read).Should().BeTrue();
            read.Should().Be(position);
        });
    }

    public static TheoryData<string, long> GoodSince() => new()
    {
        { "0", 0 },
        { "1234", 1234 },
        { "9007199254740993", 9007199254740993 },
        { "\"0\"", 0 },
        { "\"9007199254740993\"", 9007199254740993 },
        { "\"9223372036854775807\"", long.MaxValue },
        { "\"0000000000000000042\"", 42 },
        { "\"\\u0031\\u0032\"", 12 },
    };

    [Theory]
    [MemberData(nameof(GoodSince))]
    public void Since_AnIntegerOrAStringOfUpTo19Digits_IsAPosition(string since, long expected)
    {
        SinceOf(since).Should().Be(expected);
    }

    public static TheoryData<string> BadSince() => new()
    {
        "\"abc\"", "\"-1\"", "-1", "\"+1\"", "\"1e3\"", "1e3", "\" 1\"", "\"1 \"", "\"\"", "\"0x10\"",
        "\"00000000000000000001\"", "\"" + new string('9', 25) + "\"", "\"9223372036854775808\"", "9223372036854775808",
        "\"18446744073709551615\"", "\"\\ud800\"", "\"１\"", "\"١\"", "\"" + new string('1', 1024 * 1024) + "\"",
        "{\"a\":1}", "[1]", "true", "false", "1e400", "1.5", "-0", "1.0", "\"1.0\"", "\"1\\u0000\"",
    };

    [Theory]
    [MemberData(nameof(BadSince))]
    public void Since_AnythingElse_IsNotAPosition_AndNothingThrows(string since)
    {
        SinceOf(since).Should().BeNull();
    }

    /// <summary>What a subscribe request's <c>since</c> resumes after: read as the socket reads it, or null for invalid_position.</summary>
    private static long? SinceOf(string sinceJson)
    {
        var request = ClientRequest.Parse(Encoding.UTF8.GetBytes("{\"type\":\"subscribe\",\"tables\":[\"t\"],\"since\":" + sinceJson + "}"), out var error);
        error.Should().BeNull();
        request!.Since.Should().NotBeNull();
        return Protocol.Positions.TryParse(request.Since, out var position) ? position : null;
    }
}
