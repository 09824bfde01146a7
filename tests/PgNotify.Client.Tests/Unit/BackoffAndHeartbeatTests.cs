using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Time.Testing;
using PgNotify.Client;
using PgNotify.Client.Internal;
using PgNotify.Client.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Unit;

/// <summary>Backoff and heartbeat on a fake clock: delays, attempt counts and timeouts without waiting for real time.</summary>
public sealed partial class BackoffAndHeartbeatTests
{
    [Theory]
    [InlineData(0, 0.0, 250)]
    [InlineData(0, 0.999, 500)]
    [InlineData(3, 0.0, 2000)]
    [InlineData(3, 0.5, 3000)]
    [InlineData(10, 0.0, 15000)]
    [InlineData(10, 1.0, 30000)]
    [InlineData(int.MaxValue, 1.0, 30000)]
    public void Backoff_IsFullJitterAboveHalfTheCap_AndCapped(int attempt, double random, double expectedMs)
    {
        var delay = Backoff.Delay(attempt, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(30), random);

        delay.TotalMilliseconds.Should().BeApproximately(expectedMs, 1);
    }

    [Fact]
    public async Task Reconnects_BackOffMoreAfterEachShortLivedConnection_AndStartOverAfterMinUptime()
    {
        var time = new FakeTimeProvider();
        var release = new TaskCompletionSource();
        await using var server = await RawServer.StartAsync(async (context, number) =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await RawServer.SendAsync(socket, """{"type":"welcome","protocol":1,"lossless":false}""");
            if (number == 4)
            {
                await release.Task; // this one stays up until the test has moved the clock past MinUptime
            }

            await socket.CloseAsync(WebSocketCloseStatus.PolicyViolation, "flapping", CancellationToken.None);
        });
        var logs = new LogCollector();
        await using var client = new PgNotifyClient(
            new PgNotifyClientOptions
            {
                Url = server.Url,
                MinReconnectDelay = TimeSpan.FromSeconds(1),
                MaxReconnectDelay = TimeSpan.FromSeconds(60),
                MinUptime = TimeSpan.FromSeconds(5),
            },
            logs,
            time);
        await client.ConnectAsync();

        var delays = new List<(int Attempt, long Ms)>();
        for (var i = 0; i < 3; i++)
        {
            var (attempt, ms) = Parse(await logs.WaitForAsync(3002));
            delays.Add((attempt, ms));
            time.Advance(TimeSpan.FromMilliseconds(ms));
        }

        delays.Select(d => d.Attempt).Should().Equal(1, 2, 3);
        delays[0].Ms.Should().BeInRange(500, 1000);
        delays[1].Ms.Should().BeInRange(1000, 2000);
        delays[2].Ms.Should().BeInRange(2000, 4000);

        await logs.WaitForAsync(3000); // connected: the 4th connection, which stays up
        time.Advance(TimeSpan.FromSeconds(5));
        release.SetResult();

        var (again, againMs) = Parse(await logs.WaitForAsync(3002));
        again.Should().Be(1, "the connection stayed up MinUptime, so the count started over");
        againMs.Should().BeInRange(500, 1000);
    }

    [Fact]
    public void Heartbeat_PingsAfterSilence_KeepsGoingWhileFramesCome_AndGivesUpAfterTheTimeout()
    {
        var time = new FakeTimeProvider();
        var pings = 0;
        var timeouts = 0;
        using var heartbeat = new Heartbeat(time, TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(10), _ =>
        {
            pings++;
            return ValueTask.CompletedTask;
        }, () => timeouts++, CancellationToken.None);

        time.Advance(TimeSpan.FromSeconds(20));
        heartbeat.FrameReceived(); // a change: the silence starts again
        time.Advance(TimeSpan.FromSeconds(24));
        pings.Should().Be(0, "only 24 s since the last frame");
        time.Advance(TimeSpan.FromSeconds(1));
        pings.Should().Be(1, "25 s without a frame");

        time.Advance(TimeSpan.FromSeconds(5));
        heartbeat.FrameReceived(); // the pong
        time.Advance(TimeSpan.FromSeconds(5));
        timeouts.Should().Be(0, "a frame came after the ping");
        time.Advance(TimeSpan.FromSeconds(19));
        pings.Should().Be(1);
        time.Advance(TimeSpan.FromSeconds(1));
        pings.Should().Be(2, "25 s after the last frame");

        time.Advance(TimeSpan.FromSeconds(9));
        timeouts.Should().Be(0);
        time.Advance(TimeSpan.FromSeconds(1));
        timeouts.Should().Be(1, "no frame within 10 s of the ping");
        time.Advance(TimeSpan.FromMinutes(5));
        (pings, timeouts).Should().Be((2, 1), "a connection given up on is not pinged again");
    }

    [Fact]
    public void Heartbeat_Infinite_NeverPings()
    {
        var time = new FakeTimeProvider();
        var pings = 0;
        using var heartbeat = new Heartbeat(time, Timeout.InfiniteTimeSpan, TimeSpan.FromSeconds(10), _ =>
        {
            pings++;
            return ValueTask.CompletedTask;
        }, () => pings += 100, CancellationToken.None);

        time.Advance(TimeSpan.FromDays(1));

        pings.Should().Be(0);
    }

    private static (int Attempt, long Ms) Parse(string message)
    {
        var match = ReconnectingLine().Match(message);
        match.Success.Should().BeTrue(message);
        return (int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), long.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [GeneratedRegex(@"Reconnecting in (\d+) ms \(attempt (\d+)\)")]
    private static partial Regex ReconnectingLine();
}
