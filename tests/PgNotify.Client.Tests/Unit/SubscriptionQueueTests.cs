using PgNotify.Client;
using PgNotify.Client.Internal;

namespace PgNotify.Client.Tests.Unit;

/// <summary>A subscription's queue when the app reads too slowly: dropped messages are counted and reported, never silent.</summary>
public sealed class SubscriptionQueueTests
{
    [Fact]
    public async Task Overflow_DropsUntilTheAppHasReadTheQueue_ThenReportsHowManyWereMissed()
    {
        var subscription = new ClientSubscription("public", "t", new PgSubscribeOptions(), capacity: 10);
        var delivered = Enumerable.Range(0, 15).Count(i => subscription.Deliver(new PgResyncMessage("t", "n" + i, null)) );
        subscription.Deliver(new PgSnapshotEndMessage("t", 0, false, ["id"], null)).Should().BeFalse("still overflowing until the app has read the queue");
        subscription.Complete();
        var overflowReported = 0;

        var read = new List<PgNotifyMessage>();
        await foreach (var message in subscription.ReadAllAsync(() => overflowReported++, CancellationToken.None))
        {
            read.Add(message);
        }

        delivered.Should().Be(10);
        read.Should().HaveCount(11);
        read[^1].Should().BeOfType<PgResyncMessage>().Which.Reason.Should().Be("client_overflow");
        ((PgResyncMessage)read[^1]).Missed.Should().Be(1, "one data message (the snapshot end) was dropped; resyncs are not data");
        overflowReported.Should().Be(1);
    }
}
