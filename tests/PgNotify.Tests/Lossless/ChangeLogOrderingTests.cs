using PgNotify.Internal;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Lossless;

/// <summary>The classic trap: a transaction that took a lower position commits after one with a higher position.</summary>
public sealed class ChangeLogOrderingTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private Task<CoreHost> StartAsync(string table) =>
        CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o => o.LosslessDelivery = true);

    [Fact]
    public async Task LowerPositionCommittingLater_IsNotSkipped_AndEverythingArrivesInPositionOrder()
    {
        var table = await db.CreateTableAsync();
        await using var host = await StartAsync(table);
        var t = PostgresFixture.Quote(table);

        await using var slow = await db.DataSource.OpenConnectionAsync();
        await using var slowTx = await slow.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand($"INSERT INTO {t} VALUES (1, 'takes the lower position, commits last')", slow, slowTx))
        {
            await insert.ExecuteNonQueryAsync();
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'higher position, commits first')");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (3, 'later still')");

        // While the slow transaction runs, nothing after its position may be handed out (that would be a gap later):
        // once the reader has read rows 2 and 3 from the log, it must hold them back, not deliver them.
        var source = (ChangeLogSource)host.Host.Services.GetRequiredService<IChangeSource>();
        await ChangeStreamExtensions.WaitUntilAsync(() => source.PendingCount >= 2, because: "the reader reads the later rows");
        host.Changes.Reader.TryRead(out var early).Should().BeFalse($"position order must wait for the running transaction, got {early}");

        await slowTx.CommitAsync();
        var changes = await host.Changes.NextChangesAsync(3);
        changes.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3);
        changes.Select(c => c.Position!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
    }

    [Fact]
    public async Task LowerPositionRolledBack_IsSettled_AndLaterChangesFlow()
    {
        var table = await db.CreateTableAsync();
        await using var host = await StartAsync(table);
        var t = PostgresFixture.Quote(table);

        await using var doomed = await db.DataSource.OpenConnectionAsync();
        await using var doomedTx = await doomed.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand($"INSERT INTO {t} VALUES (1, 'rolled back')", doomed, doomedTx))
        {
            await insert.ExecuteNonQueryAsync();
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'kept')");
        await doomedTx.RollbackAsync();

        var change = await host.Changes.NextChangeAsync();
        change.Data!.Value.GetProperty("id").GetInt32().Should().Be(2);
    }

    [Fact]
    public async Task UnrelatedLongTransaction_DoesNotHoldDeliveryUp()
    {
        var table = await db.CreateTableAsync();
        var unrelated = await db.CreateTableAsync();
        await using var host = await StartAsync(table);

        await using var longRunning = await db.DataSource.OpenConnectionAsync();
        await using var longTx = await longRunning.BeginTransactionAsync();
        await using (var write = new NpgsqlCommand($"INSERT INTO {PostgresFixture.Quote(unrelated)} VALUES (1, 'holds an xid, not the log')", longRunning, longTx))
        {
            await write.ExecuteNonQueryAsync();
        }

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'must flow')");
        (await host.Changes.NextChangeAsync(TimeSpan.FromSeconds(5))).Data!.Value.GetProperty("id").GetInt32().Should().Be(1);
        await longTx.RollbackAsync();
    }

    [Fact]
    public async Task BackendTerminated_NoGapIsReported_AndChangesCommittedMeanwhileArrive()
    {
        var table = await db.CreateTableAsync();
        await using var host = await StartAsync(table);
        var t = PostgresFixture.Quote(table);

        await db.TerminateListenersAsync();
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'during the gap' FROM generate_series(1, 100) g");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.ReconnectCount >= 1);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (101, 'after')");

        var ids = new List<int>();
        while (ids.Count < 101)
        {
            var item = await host.Changes.NextEventAsync();
            item.Should().BeOfType<PgChange>("lossless delivery closes the gap instead of reporting it");
            ids.Add(((PgChange)item).Data!.Value.GetProperty("id").GetInt32());
        }

        ids.Should().Equal(Enumerable.Range(1, 101));
    }
}
