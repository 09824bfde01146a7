using Npgsql;
using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.Snapshots;
using PgNotify.Tests.WebSockets;
using Xunit.Abstractions;

namespace PgNotify.Tests.Replication;

/// <summary>
/// The replication source on a server whose transaction ids are past 2^32 (epoch 3): pgoutput's 32-bit xids are widened
/// to the 64-bit ones of <c>pg_current_xact_id()</c>, so changes carry the trigger source's <c>xid</c> and snapshots
/// (whose visibility is 64-bit) skip exactly the changes they hold.
/// </summary>
[Collection(HeavyCollection.Name)]
public sealed class ReplicationEpochTests(HighEpochFixture db, ITestOutputHelper output) : IClassFixture<HighEpochFixture>
{
    [Fact]
    public async Task BothSources_GiveEachChangeTheWritersFullTransactionId_Above2Pow32()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var trigger = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var replication = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await replication.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        var written = new List<long>();
        foreach (var sql in new[] { $"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')", $"UPDATE {t} SET name = 'c' WHERE id = 1", $"DELETE FROM {t} WHERE id = 2" })
        {
            await using var connection = await db.DataSource.OpenConnectionAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var change = new NpgsqlCommand(sql, connection, transaction))
            {
                await change.ExecuteNonQueryAsync();
            }

            await using (var xid = new NpgsqlCommand("SELECT pg_current_xact_id()::text::bigint", connection, transaction))
            {
                written.Add((long)(await xid.ExecuteScalarAsync())!);
            }

            await transaction.CommitAsync();
        }

        var expected = new[] { written[0], written[0], written[1], written[2] };
        expected.Should().OnlyContain(x => x >= (long)HighEpochFixture.Epoch << 32, "the cluster's xids are in epoch 3");
        (await trigger.Changes.NextChangesAsync(4, TimeSpan.FromSeconds(30))).Select(c => c.TransactionId).Should().Equal(expected);
        (await replication.Changes.NextChangesAsync(4, TimeSpan.FromSeconds(30))).Select(c => c.TransactionId).Should().Equal(
            expected, "the replication source widens pgoutput's 32-bit xid to the trigger's 64-bit one");
    }

    [Fact]
    public Task Replication_SnapshotsAtRandomMomentsUnderLoad_EndEqualToTheTable() =>
        new SnapshotLoad(db, output).RunAsync(o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()), null, seed: 23);
}
