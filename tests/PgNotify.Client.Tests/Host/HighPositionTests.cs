using PgNotify.Client.Tests.Infrastructure;
using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.Replication;

namespace PgNotify.Client.Tests.Host;

/// <summary>
/// Issue 14 with the .NET client: a host with the replication source on a cluster past 2^53 (WAL from 40/0) sends
/// positions as strings of digits; the client reads them exactly and resumes from them through a new connection.
/// </summary>
public sealed class HighPositionTests(HighPositionFixture db) : IClassFixture<HighPositionFixture>
{
    private const long MaxJsonInteger = 9007199254740991;

    [Fact]
    public async Task PositionsAbove2Pow53_AreReadExactly_AndTheClientResumesFromThemAfterADroppedConnection()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await using var proxy = new TcpProxy("127.0.0.1", host.BaseAddress.Port);
        await using var client = new PgNotifyClient(new PgNotifyClientOptions
        {
            Url = new Uri($"ws://127.0.0.1:{proxy.Port}/ws/changes/"),
            MinReconnectDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
            HeartbeatInterval = TimeSpan.FromMilliseconds(300),
            HeartbeatTimeout = TimeSpan.FromMilliseconds(300),
        });
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'before')");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'before')");
        var first = await messages.WaitForAsync<PgChangeMessage>(c => IdOf(c) == 1);
        var second = await messages.WaitForAsync<PgChangeMessage>(c => IdOf(c) == 2);
        first.Position.Should().BeGreaterThan(MaxJsonInteger);
        second.Position.Should().BeGreaterThan(first.Position!.Value, "two commits: exact positions differ (rounded ones could not)");
        (second.Position!.Value >> 16).Should().BeGreaterThanOrEqualTo(0x40L << 32, "the commit LSN of a cluster whose WAL starts at 40/0");

        proxy.BlackholeExisting();
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (3, 'while away')");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (4, 'while away')");

        (await messages.WaitForAsync<PgSubscribedMessage>(s => s.Resumed)).Position.Should().BeGreaterThan(second.Position.Value);
        var third = await messages.WaitForAsync<PgChangeMessage>(c => IdOf(c) == 3);
        var fourth = await messages.WaitForAsync<PgChangeMessage>(c => IdOf(c) == 4);
        third.Position.Should().BeGreaterThan(second.Position.Value);
        fourth.Position.Should().BeGreaterThan(third.Position!.Value);
        messages.Seen.OfType<PgChangeMessage>().Select(IdOf).Should().Equal([1, 2, 3, 4], "resumed from 2's position: no repeat, no gap");
        messages.Seen.OfType<PgResyncMessage>().Should().BeEmpty("a resume from an exact position needs no reload");
        proxy.ConnectionCount.Should().BeGreaterThanOrEqualTo(2);
    }

    private static int IdOf(PgChangeMessage change) => (change.Data ?? change.Old)!.Value.GetProperty("id").GetInt32();
}
