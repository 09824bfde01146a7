using PgNotify.Internal;

namespace PgNotify.Tests.Unit;

/// <summary>The change-log merge's hole handling, case by case, without a database.</summary>
public sealed class ChangeLogMergeTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UnixEpoch;

    private static (long, string) Row(long position) =>
        (position, $"{{\"v\":1,\"schema\":\"public\",\"table\":\"t\",\"op\":\"INSERT\",\"xid\":1,\"seq\":{position},\"data\":{{\"id\":{position}}}}}");

    private static long[] Positions(ChangeLogBatch batch) => [.. batch.Changes.Select(c => c.Position!.Value)];

    [Fact]
    public void Merge_HoleWhoseOwnerStillHoldsTheLog_HoldsBackWhatFollows_UntilItCommits()
    {
        var merge = new ChangeLogMerge(batchSize: 100, maxHoles: 1_000);
        merge.Start(0, [], []);

        Positions(merge.Merge([Row(1), Row(3)], ["writer-2"], 0, Now)).Should().Equal(1);
        merge.HoleCount.Should().Be(1);
        Positions(merge.Merge([], ["writer-2"], -1, Now)).Should().BeEmpty("position 2's owner still runs");
        Positions(merge.Merge([Row(2)], [], 0, Now)).Should().Equal(2, 3);
        merge.HoleCount.Should().Be(0);
        merge.DeliveredThrough.Should().Be(3);
    }

    [Fact]
    public void Merge_HoleWhoseOwnerEndedWithoutTheRowAppearing_IsSettledAsRolledBack()
    {
        var merge = new ChangeLogMerge(batchSize: 100, maxHoles: 1_000);
        merge.Start(0, [], []);

        Positions(merge.Merge([Row(1), Row(3)], ["writer-2"], 0, Now)).Should().Equal(1);
        Positions(merge.Merge([], [], -1, Now)).Should().BeEmpty("the holders were read after this snapshot: the owner may have committed since");
        Positions(merge.Merge([], [], -1, Now)).Should().Equal(3);
        merge.DeliveredThrough.Should().Be(3);
    }

    [Fact]
    public void Merge_JumpWiderThanMaxHoles_GivesTheLowerPartUpAsOneGap_AndDeliversWhatFollows()
    {
        var merge = new ChangeLogMerge(batchSize: 100, maxHoles: 10);
        merge.Start(0, [], []);

        var batch = merge.Merge([Row(1), Row(100)], ["x"], 0, Now);

        // The range below the kept window of 10 (1..89) is given up as a whole; the visible row 1 in it is still delivered.
        batch.AbandonedHoles.Should().Be(89);
        batch.Gap.Should().NotBeNull();
        Positions(batch).Should().Equal(1);
        merge.HoleCount.Should().BeLessThanOrEqualTo(10);
        Positions(merge.Merge([], [], -1, Now)).Should().BeEmpty();
        Positions(merge.Merge([], [], -1, Now)).Should().Equal(100);
    }

    [Fact]
    public void Merge_LogPrunedPastTheReader_IsAGapAndDeliveryContinuesAboveIt()
    {
        var merge = new ChangeLogMerge(batchSize: 100, maxHoles: 1_000);
        merge.Start(0, [], []);

        var batch = merge.Merge([Row(51)], [], 50, Now);

        batch.PrunedPastReader.Should().BeTrue();
        batch.Gap!.Reason.Should().Be(PgChangeGapReason.Unreadable);
        Positions(batch).Should().Equal(51);
    }
}
