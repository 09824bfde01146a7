using System.Text;
using System.Text.Json;
using PgNotify.Client.Internal;

namespace PgNotify.Client.Tests.Unit;

/// <summary>
/// Positions in both wire forms (docs/protocol.md, "Positions"): the client reads an integer or a string of digits
/// into a long, and writes <c>since</c> as the server writes positions, so it interoperates with any server.
/// </summary>
public sealed class PositionTests
{
    public static TheoryData<string, long?> Frames() => new()
    {
        { "1234", 1234 },
        { "9007199254740991", 9007199254740991 },
        { "\"9007199254740992\"", 9007199254740992 },
        { "\"9007199254740993\"", 9007199254740993 },
        { "\"9223372036854775807\"", long.MaxValue },
        { "\"9223372036854775808\"", null },
        { "\"-1\"", null },
        { "\"1e3\"", null },
        { "\"\\ud800\"", null },
        { "\"１\"", null },
        { "true", null },
        { "1.5", null },
    };

    [Theory]
    [MemberData(nameof(Frames))]
    public void EveryFrameWithAPosition_ReadsBothForms_AndNothingElse(string position, long? expected)
    {
        var change = "{\"type\":\"change\",\"schema\":\"public\",\"table\":\"t\",\"operation\":\"INSERT\",\"xid\":1,\"seq\":1,\"data\":{\"id\":1},\"position\":" + position + "}";
        var subscribed = "{\"type\":\"subscribed\",\"id\":\"1\",\"tables\":[\"public.t\"],\"position\":" + position + "}";
        var snapshotEnd = "{\"type\":\"snapshot_end\",\"id\":\"1\",\"schema\":\"public\",\"table\":\"t\",\"count\":0,\"truncated\":false,\"key\":[\"id\"],\"position\":" + position + "}";
        foreach (var text in new[] { change, subscribed, snapshotEnd })
        {
            var frame = ServerFrameParser.Parse(Encoding.UTF8.GetBytes(text), out var error);
            error.Should().BeNull();
            frame!.Position.Should().Be(expected, text);
        }
    }

    [Theory]
    [InlineData(0L, "0")]
    [InlineData(9007199254740991L, "9007199254740991")]
    [InlineData(9007199254740992L, "\"9007199254740992\"")]
    [InlineData(9007199254740993L, "\"9007199254740993\"")]
    [InlineData(long.MaxValue, "\"9223372036854775807\"")]
    public void Subscribe_WritesSinceAsTheServerWritesPositions(long since, string expected)
    {
        var subscription = new ClientSubscription("public", "t", new PgSubscribeOptions(), capacity: 10);

        var request = Encoding.UTF8.GetString(Requests.Subscribe("1", subscription, since, snapshot: false));

        request.Should().Contain("\"since\":" + expected);
        using var parsed = JsonDocument.Parse(request);
        parsed.RootElement.GetProperty("since").ValueKind.Should().Be(since <= 9007199254740991 ? JsonValueKind.Number : JsonValueKind.String);
    }
}
