using Microsoft.Extensions.DependencyInjection;
using PgNotify.Internal;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Replays read only the tables asked for (filtered in SQL), at most MaxConcurrentReplays read at once (the others wait,
/// cancellable), and the lossless reader's set of holes is bounded.
/// </summary>
public sealed class ReplayLimitsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Replay_FilteredByTable_ReturnsOnlyThatTableInOrder()
    {
        var a = await db.CreateTableAsync();
        var b = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [a, b], o => o.LosslessDelivery = true);
        await host.Status.WaitUntilCaughtUpAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(a)} SELECT i, 'a' FROM generate_series(1, 1500) i");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(b)} SELECT i, 'b' FROM generate_series(1, 1500) i");
        var all = await host.Changes.NextChangesAsync(3000);

        var log = host.Host.Services.GetRequiredService<PgChangeLog>();
        var replayed = new List<PgChange>();
        await foreach (var change in log.ReadAsync(all[0].Position!.Value - 1, all[^1].Position!.Value, [new PgTableName("public", b)], CancellationToken.None))
        {
            replayed.Add(change);
        }

        replayed.Should().HaveCount(1500).And.OnlyContain(c => c.Table.Name == b);
        replayed.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 1500));
    }

    [Fact]
    public async Task Replays_BeyondMaxConcurrentReplays_WaitForASlotAndCanBeCancelled()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            o.LosslessDelivery = true;
            o.MaxConcurrentReplays = 1;
        });
        await host.Status.WaitUntilCaughtUpAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a')");
        var change = await host.Changes.NextChangeAsync();
        var log = host.Host.Services.GetRequiredService<PgChangeLog>();

        // Block replay reads in the database: the first replay holds the only slot while it waits for the lock.
        await using var blocker = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await blocker.BeginTransactionAsync();
        await using (var lockLog = new Npgsql.NpgsqlCommand("LOCK TABLE pgnotify.change_log IN ACCESS EXCLUSIVE MODE", blocker, transaction))
        {
            await lockLog.ExecuteNonQueryAsync();
        }

        var first = ReadAllAsync(log, change.Position!.Value - 1, change.Position.Value, CancellationToken.None);
        await ChangeStreamExtensions.WaitUntilAsync(() => log.ReplaysRunning == 1, because: "the first replay takes the slot");
        using var cancel = new CancellationTokenSource();
        var second = ReadAllAsync(log, change.Position.Value - 1, change.Position.Value, cancel.Token);
        var third = ReadAllAsync(log, change.Position.Value - 1, change.Position.Value, CancellationToken.None);

        var waitingInDatabase = await db.ScalarAsync<long>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%pgnotify.change_log%'");
        waitingInDatabase.Should().Be(1, "only one replay may read at once");
        second.IsCompleted.Should().BeFalse();

        await cancel.CancelAsync();
        await FluentActions.Awaiting(() => second).Should().ThrowAsync<OperationCanceledException>();

        await transaction.RollbackAsync();
        (await first).Should().ContainSingle();
        (await third).Should().ContainSingle();
        log.ReplaysRunning.Should().Be(0);
    }

    private static async Task<List<PgChange>> ReadAllAsync(PgChangeLog log, long after, long through, CancellationToken cancellationToken)
    {
        var changes = new List<PgChange>();
        await foreach (var change in log.ReadAsync(after, through, cancellationToken))
        {
            changes.Add(change);
        }

        return changes;
    }

    [Fact]
    public async Task ChangeLogReader_MoreHolesThanItsBound_GivesTheOldestUpAsAGapAndDeliversWhatFollows()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            o.LosslessDelivery = true;
            o.MaxChangeLogHoles = 10;
        });
        await host.Status.WaitUntilCaughtUpAsync();
        var t = PostgresFixture.Quote(table);

        // A transaction that takes 50 positions stays open: 50 holes below the next committed change.
        await using var writer = await db.DataSource.OpenConnectionAsync();
        await using var transaction = await writer.BeginTransactionAsync();
        await using (var insert = new Npgsql.NpgsqlCommand($"INSERT INTO {t} SELECT i, 'held' FROM generate_series(1, 50) i", writer, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (100, 'after')");

        var gap = await host.Changes.NextEventAsync();
        gap.Should().BeOfType<PgChangeGap>().Which.Reason.Should().Be(PgChangeGapReason.Unreadable);
        host.Logs.WithId(1027).Should().ContainSingle();
        host.Status.DeliveredPosition.Should().BeGreaterThan(0);

        // The 10 newest holes are still awaited; once their transaction commits, those 10 arrive, then the later change.
        await transaction.CommitAsync();
        var rest = new List<PgChange>();
        while (rest.Count == 0 || rest[^1].Data!.Value.GetProperty("id").GetInt32() != 100)
        {
            rest.Add(await host.Changes.NextChangeAsync());
        }

        rest.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal([.. Enumerable.Range(41, 10), 100]);
    }
}
