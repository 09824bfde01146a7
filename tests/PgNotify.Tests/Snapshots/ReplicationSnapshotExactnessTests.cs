using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.Replication;
using PgNotify.Tests.WebSockets;
using Xunit.Abstractions;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// <see cref="SnapshotExactnessTests"/> with the replication source: snapshots taken at random moments while writers
/// run, and the walsender killed halfway; every socket ends with exactly the table's rows, no change applied twice.
/// (<see cref="ReplicationEpochTests"/> runs the same load on a server whose transaction ids are past 2^32.)
/// </summary>
[Collection(HeavyCollection.Name)]
public sealed class ReplicationSnapshotExactnessTests(ReplicationFixture db, ITestOutputHelper output) : IClassFixture<ReplicationFixture>
{
    [Fact]
    public async Task Replication_SnapshotsUnderLoad_WalSenderKilledHalfway_EndEqualToTheTable()
    {
        var instance = ReplicationFixture.NewInstance();
        var resyncs = await new SnapshotLoad(db, output).RunAsync(o => ReplicationFixture.UseReplication(o, instance), async stop =>
        {
            await Task.Delay(SnapshotLoad.WriteFor / 2, stop);
            (await db.TerminateWalSenderAsync(PgNotify.Internal.ReplicationSetup.SlotNameFor(instance))).Should().Be(1);
        }, seed: 19);
        resyncs.Should().Be(0, "the replication source loses nothing when its walsender goes: it resumes from its slot");
    }
}
