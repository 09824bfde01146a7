using System.Diagnostics;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

public sealed class ChangeFeedTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task SlowConsumer_DoesNotDelayAnother_AndIsToldHowManyItLost()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        using var stalled = host.Feed.Subscribe("stalled", capacity: 10);
        using var fast = host.Feed.Subscribe("fast", capacity: 1_000);

        var watch = Stopwatch.StartNew();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 500) g");
        var received = await fast.NextChangesAsync(500, TimeSpan.FromSeconds(10));
        watch.Stop();

        received.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 500));
        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5), "the stalled consumer never reads, and must not hold anyone up");
        stalled.DroppedCount.Should().Be(490);

        // Once the stalled consumer reads, it gets its 10 changes, then the gap with the exact count, then new changes.
        var first = await stalled.NextChangesAsync(10);
        first.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 10));
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1000, 'later')");
        var gap = await stalled.NextEventAsync();
        gap.Should().BeOfType<PgChangeGap>().Which.Should().BeEquivalentTo(new { Reason = PgChangeGapReason.ConsumerOverflow, DroppedCount = 490L });
        (await stalled.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(1000);
    }

    [Fact]
    public async Task ConsumerThatOverflowedOnTheLastBurst_IsToldOfTheGap_WithoutAnotherChangeToCarryIt()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        using var stalled = host.Feed.Subscribe("stalled", capacity: 10);

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 50) g");
        await ChangeStreamExtensions.WaitUntilAsync(() => stalled.DroppedCount == 40);

        // Nothing more is written: the gap must still come, right after the 10 changes the buffer held.
        var first = await stalled.NextChangesAsync(10);
        first.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 10));
        var gap = await stalled.NextEventAsync(TimeSpan.FromSeconds(5));
        gap.Should().BeOfType<PgChangeGap>().Which.Should().BeEquivalentTo(new { Reason = PgChangeGapReason.ConsumerOverflow, DroppedCount = 40L });
    }

    [Fact]
    public async Task SeveralConsumers_EachGetEveryChange_ThroughIAsyncEnumerable()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var subscriptions = Enumerable.Range(0, 3).Select(i => host.Feed.Subscribe("consumer" + i)).ToList();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var readers = subscriptions.Select(async s =>
        {
            var ids = new List<int>();
            await foreach (var item in s.ReadAllAsync(cts.Token))
            {
                if (item is PgChange change)
                {
                    ids.Add(change.Data!.Value.GetProperty("id").GetInt32());
                    if (ids.Count == 50)
                    {
                        break;
                    }
                }
            }

            return ids;
        }).ToList();

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'x' FROM generate_series(1, 50) g");

        foreach (var ids in await Task.WhenAll(readers))
        {
            ids.Should().Equal(Enumerable.Range(1, 50));
        }

        subscriptions.ForEach(s => s.Dispose());
    }
}
