using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Hardening;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Lossless;

/// <summary>
/// IPgChangeLogFeed.SubscribeAsync: an in-process consumer subscribes from a position and gets every later change of its
/// tables once, in position order, the replay and the live changes joined while writers keep writing.
/// </summary>
public sealed class ChangeLogFeedTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task SubscribeAsync_FromAPosition_ReplaysThenStreamsEveryChangeOnceInOrder_WhileWritersWrite()
    {
        var a = await db.CreateTableAsync();
        var b = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [a, b], o => o.LosslessDelivery = true);
        var status = host.Host.Services.GetRequiredService<IPgNotifyStatus>();
        await status.WaitUntilCaughtUpAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(a)} VALUES (0, 'before')");
        var first = (await host.Changes.NextChangesAsync(1))[0];
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(a)} SELECT i, 'a' FROM generate_series(1, 300) i");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(b)} SELECT i, 'b' FROM generate_series(1, 300) i");
        await host.Changes.NextChangesAsync(600);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var feed = host.Host.Services.GetRequiredService<IPgChangeLogFeed>();
        var request = new PgChangeFeedRequest { After = first.Position!.Value, Tables = [new PgTableName("public", a)] };
        // Writers keep writing while the consumer replays and switches to live changes: 300 more rows, one per transaction.
        var writer = Task.Run(async () =>
        {
            for (var i = 301; i <= 600; i++)
            {
                await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(a)} VALUES ({i}, 'a'); INSERT INTO {PostgresFixture.Quote(b)} VALUES ({i}, 'b')");
            }
        });

        var received = new List<PgChange>();
        await foreach (var item in feed.SubscribeAsync(request, timeout.Token))
        {
            item.Should().BeOfType<PgChange>("nothing overflowed, so nothing is a gap");
            received.Add((PgChange)item);
            if (received.Count == 600)
            {
                break;
            }
        }

        await writer;
        received.Should().OnlyContain(c => c.Table.Name == a);
        received.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 600));
        received.Select(c => c.Position!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        status.FailedLoops.Should().BeEmpty();
    }

    [Fact]
    public async Task SubscribeAsync_WithoutLosslessDelivery_ThrowsSayingWhatToChange()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var feed = host.Host.Services.GetRequiredService<IPgChangeLogFeed>();

        var subscribe = () => feed.SubscribeAsync(new PgChangeFeedRequest());

        subscribe.Should().Throw<InvalidOperationException>().WithMessage("*LosslessDelivery*");
    }
}
