using System.Text;
using PgNotify.Client.Internal;

namespace PgNotify.Client.Tests.Unit;

/// <summary>The frame parser (pure): every input gives a frame or an error text, never an exception.</summary>
public sealed class ParserTests
{
    public static TheoryData<string> Hostile() => new()
    {
        "", " ", "not json", "{", "}", "[]", "null", "1e400", "\"x\"", "{\"type\":null}", "{\"type\":\"\\ud800\"}",
        "{\"type\":\"change\",\"schema\":\"public\",\"table\":\"t\",\"operation\":\"INSERT\",\"data\":{\"id\":1},\"position\":-1e400}",
        "{\"type\":\"snapshot\",\"schema\":\"s\",\"table\":\"t\",\"rows\":[{}],\"id\":1e400}",
        "{\"type\":\"snapshot_end\",\"schema\":\"s\",\"table\":\"t\",\"count\":1,\"key\":[\"\\udc00\"]}",
        new string('[', 10_000) + new string(']', 10_000),
        string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000),
        "{\"type\":\"change\",\"schema\":\"public\",\"table\":\"t\",\"operation\":\"INSERT\",\"data\":{\"x\":" + new string('[', 10_000) + new string(']', 10_000) + "}}",
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Parse_HostileInput_GivesAFrameOrAnError_NeverThrows(string text)
    {
        var frame = ServerFrameParser.Parse(Encoding.UTF8.GetBytes(text), out var error);

        (frame is null).Should().Be(error is not null);
    }

    [Fact]
    public void Parse_RowNestedToTheLimit_IsKeptWhole_AndADeeperOneIsRefused()
    {
        static string Frame(string x) => "{\"type\":\"change\",\"schema\":\"public\",\"table\":\"t\",\"operation\":\"INSERT\",\"data\":{\"x\":" + x + "}}";
        var deep = new string('[', ServerFrameParser.MaxDepth - 2) + new string(']', ServerFrameParser.MaxDepth - 2);
        var tooDeep = new string('[', 10_000) + new string(']', 10_000);

        ServerFrameParser.Parse(Encoding.UTF8.GetBytes(Frame(deep)), out _)!.Data!.Value.GetProperty("x").GetRawText().Should().Be(deep);
        ServerFrameParser.Parse(Encoding.UTF8.GetBytes(Frame(tooDeep)), out var error).Should().BeNull();
        error.Should().Contain("depth");
    }
}
