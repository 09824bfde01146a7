using System.Globalization;
using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>
/// Issue 14: with the replication source on a server past 128 GiB of WAL, positions exceed 2^53. On a real cluster
/// whose WAL starts at 40/0, every frame carries them as strings of digits, and a resume with such a string is exact.
/// </summary>
public sealed class ReplicationHighPositionTests(HighPositionFixture db) : IClassFixture<HighPositionFixture>
{
    private const long MaxJsonInteger = 9007199254740991;

    [Fact]
    public async Task PositionsAbove2Pow53_AreStringsOfDigits_AndResumingFromOneDeliversExactlyTheLaterChanges()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        var positions = new Dictionary<int, string>();
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri()))
        {
            var ack = await socket.RequestAsync(new { type = "subscribe", id = "s", tables = new[] { table } });
            ack.GetProperty("type").GetString().Should().Be("subscribed", ack.ToString());

            for (var i = 1; i <= 10; i++)
            {
                await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'row')"); // one commit each
            }

            var previous = 0L;
            for (var i = 1; i <= 10; i++)
            {
                var frame = await socket.ReceiveTypeAsync("change");
                frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
                var position = PositionOf(frame);
                position.Should().BeGreaterThan(Math.Max(previous, MaxJsonInteger), "positions grow in commit order, above 2^53 here");
                previous = position;
                positions[i] = frame.GetProperty("position").GetString()!;
            }
        }

        // The head position of a later acknowledgment is past them all, and a string too.
        await using (var later = await TestSocket.ConnectAsync(host.SocketUri()))
        {
            var ack = await later.RequestAsync(new { type = "subscribe", id = "l", tables = new[] { table } });
            PositionOf(ack).Should().BeGreaterThanOrEqualTo(long.Parse(positions[10], CultureInfo.InvariantCulture));
        }

        // Resumed with the 5th position as it came (a string), in a subscribe request and in the handshake's query.
        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri());
        var resumeAck = await resumed.RequestAsync(new { type = "subscribe", id = "r", tables = new[] { table }, since = positions[5] });
        resumeAck.GetProperty("type").GetString().Should().Be("subscribed", resumeAck.ToString());
        await using var byQuery = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={positions[5]}"));
        await byQuery.ReceiveTypeAsync("subscribed");
        foreach (var socket in new[] { resumed, byQuery })
        {
            for (var i = 6; i <= 10; i++)
            {
                var frame = await socket.ReceiveAsync();
                frame.GetProperty("type").GetString().Should().Be("change", frame.ToString());
                frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
                frame.GetProperty("position").GetString().Should().Be(positions[i], "the same change at the same position");
            }
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (11, 'live')");
        foreach (var socket in new[] { resumed, byQuery })
        {
            var live = await socket.ReceiveAsync();
            live.GetProperty("data").GetProperty("id").GetInt32().Should().Be(11, "no duplicate and no gap at the switch to live");
            PositionOf(live).Should().BeGreaterThan(long.Parse(positions[10], CultureInfo.InvariantCulture));
        }
    }

    [Fact]
    public async Task SinceThatIsNotAPosition_GetsInvalidPosition_AndTheSameSocketStillResumes()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configureWebSockets: w =>
            {
                w.MaxMessagesPerSecond = 1000;
                w.MaxMessageBytes = 2 * 1024 * 1024;
            },
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        string[] hostile =
        [
            "\"abc\"", "\"-1\"", "\"+1\"", "\"1e3\"", "1e3", "\" 1\"", "\"\"", "\"0x10\"", "\"00000000000000000001\"",
            "\"9223372036854775808\"", "\"\\ud800\"", "\"１\"", "\"١\"", "\"" + new string('7', 1024 * 1024) + "\"",
            "{\"p\":1}", "[1]", "true", "1e400", "1.5", "-0", "\"1\\u0000\"",
        ];
        foreach (var since in hostile)
        {
            await socket.SendAsync($"{{\"type\":\"subscribe\",\"id\":\"h\",\"tables\":[\"{table}\"],\"since\":{since}}}");
            var error = await socket.ReceiveAsync();
            error.GetProperty("type").GetString().Should().Be("error", since.Length > 40 ? "a 1 MB string" : since);
            error.GetProperty("code").GetString().Should().Be("invalid_position", since.Length > 40 ? "a 1 MB string" : since);
        }

        var ack = await socket.RequestAsync(new { type = "subscribe", id = "ok", tables = new[] { table }, since = "9007199254740993" });
        ack.GetProperty("type").GetString().Should().Be("subscribed", "a string of digits is a position: " + ack);
    }

    /// <summary>A frame's position above 2^53 − 1: a JSON string of decimal digits (no sign, no leading zero).</summary>
    private static long PositionOf(JsonElement frame)
    {
        var element = frame.GetProperty("position");
        element.ValueKind.Should().Be(JsonValueKind.String, frame.ToString());
        var digits = element.GetString()!;
        digits.Should().MatchRegex("^[1-9][0-9]*$");
        return long.Parse(digits, CultureInfo.InvariantCulture);
    }
}
