using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>The replication source delivers through the same feed, with positions from the WAL.</summary>
public sealed class ReplicationDeliveryTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    [Fact]
    public async Task Replication_InsertUpdateDeleteTruncate_ArriveInCommitOrder_WithIncreasingPositions()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, name text, secret text");
        var t = PostgresFixture.Quote(table);
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance());
            o.ExcludedColumns[table] = ["secret"];
        });
        await host.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'a', 's1')");
        await db.ExecuteAsync($"UPDATE {t} SET name = 'b' WHERE id = 1");
        await db.ExecuteAsync($"DELETE FROM {t} WHERE id = 1");
        await db.ExecuteAsync($"TRUNCATE {t}");

        var changes = await host.Changes.NextChangesAsync(4, TimeSpan.FromSeconds(30));

        changes.Select(c => c.Operation).Should().Equal(PgChangeOperation.Insert, PgChangeOperation.Update, PgChangeOperation.Delete, PgChangeOperation.Truncate);
        changes.Select(c => c.Position!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        changes[0].Data!.Value.GetRawText().Should().Be("""{"id":1,"name":"a"}""", "the excluded column is stripped");
        changes[1].Old!.Value.GetProperty("name").GetString().Should().Be("a", "REPLICA IDENTITY FULL sends the whole old row");
        changes[2].Old!.Value.TryGetProperty("secret", out _).Should().BeFalse();
        host.Status.DeliveredPosition.Should().Be(changes[3].Position!.Value);
    }

    [Fact]
    public async Task ColumnTypes_AreLookedUpWhenTheStreamStarts_NotByTheFirstChange()
    {
        // Looked up by the first change instead, they held it (and every change behind it) back by about 70 ms after
        // each start of the stream: 200 ms tails in the benchmarks' p99.
        var table = await db.CreateTableAsync("id int PRIMARY KEY, name text, tags text[], at timestamptz");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await host.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        var catalog = host.Host.Services.GetRequiredService<PgNotify.Internal.PgTypeCatalog>();
        new uint[] { 23, 25, 1009, 1184 }.Where(oid => !catalog.Knows(oid)).Should().BeEmpty("int4, text, text[] and timestamptz are known before any change");
    }
}
