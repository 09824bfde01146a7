using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.WebSockets;
using Xunit.Abstractions;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// Snapshot, then changes, under load (issue #13): 4 writers change 2,000 rows at about 1,000 changes a second for 20 s
/// while 50 sockets subscribe with a snapshot at random moments, half of them filtered; when the writers stop and a
/// fence row has reached every socket, each socket's materialised rows equal a SELECT of the table under its filter,
/// row for row and column for column.
/// </summary>
[Collection(HeavyCollection.Name)]
public sealed class SnapshotExactnessTests(PostgresFixture db, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    [Fact]
    public Task LiveDelivery_SnapshotsAtRandomMomentsUnderLoad_EndEqualToTheTable() =>
        new SnapshotLoad(db, output).RunAsync(o => o.LosslessDelivery = false, null, seed: 11);

    [Fact]
    public Task LosslessDelivery_SnapshotsAtRandomMomentsUnderLoad_EndEqualToTheTable() =>
        new SnapshotLoad(db, output).RunAsync(o => o.LosslessDelivery = true, null, seed: 13);

    [Fact]
    public async Task LiveDelivery_ListenerKilledDuringTheLoad_ResyncedSocketsTakeNewSnapshotsAndEndEqualToTheTable()
    {
        var resyncs = await new SnapshotLoad(db, output).RunAsync(o => o.LosslessDelivery = false, async stop =>
        {
            await Task.Delay(SnapshotLoad.WriteFor / 2, stop);
            (await db.TerminateListenersAsync()).Should().BeGreaterThan(0);
        }, seed: 17);
        resyncs.Should().BeGreaterThan(0, "the listener was killed while sockets were subscribed");
    }
}
