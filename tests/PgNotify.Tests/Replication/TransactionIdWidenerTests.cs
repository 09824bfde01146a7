using CsCheck;
using PgNotify.Internal;

namespace PgNotify.Tests.Replication;

/// <summary>
/// pgoutput's 32-bit xids widened to the 64-bit ones of <c>pg_current_xact_id()</c>: exact in epoch 0 and above, across
/// the 2^32 boundaries, and for transactions older than the reference (a slot sends again what it had not confirmed).
/// </summary>
public sealed class TransactionIdWidenerTests
{
    private const long Epoch = 1L << 32;

    [Fact]
    public void EpochZero_XidIsTheFullXid()
    {
        var widener = new TransactionIdWidener(1000);
        widener.Widen(1000).Should().Be(1000);
        widener.Widen(1005).Should().Be(1005);
        widener.Widen(990).Should().Be(990, "an older transaction that committed later");
    }

    [Fact]
    public void EpochAboveZero_AddsTheEpoch()
    {
        var widener = new TransactionIdWidener((7 * Epoch) + 500);
        widener.Widen(500).Should().Be((7 * Epoch) + 500);
        widener.Widen(12).Should().Be((7 * Epoch) + 12, "older than the reference, same epoch");
        widener.Widen(70_000).Should().Be((7 * Epoch) + 70_000);
    }

    [Fact]
    public void CrossingA2Pow32Boundary_MovesToTheNextEpoch_AndOlderTransactionsStayInThePreviousOne()
    {
        var widener = new TransactionIdWidener((3 * Epoch) + 0xFFFF_FFF0);
        widener.Widen(0xFFFF_FFF5).Should().Be((3 * Epoch) + 0xFFFF_FFF5);
        widener.Widen(3).Should().Be((4 * Epoch) + 3, "the xid counter wrapped: the next epoch");
        widener.Widen(0xFFFF_FFFE).Should().Be((3 * Epoch) + 0xFFFF_FFFE, "begun before the wrap, committed after");
        widener.Widen(9).Should().Be((4 * Epoch) + 9);
    }

    [Fact]
    public void ReferenceJustAfterABoundary_OlderTransactionsAreInThePreviousEpoch()
    {
        var widener = new TransactionIdWidener((2 * Epoch) + 10);
        widener.Widen(0xFFFF_FF00).Should().Be((2 * Epoch) - 0x100);
        widener.Widen(20).Should().Be((2 * Epoch) + 20);
    }

    [Fact]
    public void AnyWalkOfFullXids_WithStepsBelow2Pow31_IsWidenedExactly() =>
        Gen.Select(Gen.Long[0, 1L << 62], Gen.Int[-int.MaxValue, int.MaxValue].Array[1, 40]).Sample((reference, steps) =>
        {
            var widener = new TransactionIdWidener(reference);
            var full = reference;
            foreach (var step in steps)
            {
                if (full + step < 0)
                {
                    continue; // no xid below 0
                }

                full += step;
                widener.Widen(unchecked((uint)full)).Should().Be(full, $"reference {reference}, steps {string.Join(",", steps)}");
            }
        }, iter: 20_000);

    [Fact]
    public void AnyXid_WidensToTheNearestFullXidWithTheSameLow32Bits() =>
        Gen.Select(Gen.Long[0, long.MaxValue - Epoch], Gen.UInt).Sample((reference, xid) =>
        {
            var full = new TransactionIdWidener(reference).Widen(xid);
            full.Should().BeGreaterThanOrEqualTo(0);
            unchecked((uint)full).Should().Be(xid);
            if (reference >= 1L << 31)
            {
                Math.Abs(full - reference).Should().BeLessThanOrEqualTo(1L << 31);
            }
        }, iter: 20_000);
}
