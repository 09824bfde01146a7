namespace PgNotify.Internal;

/// <summary>
/// Positions of the replication source, from the WAL, so every instance gives a change the same one: the commit
/// record's LSN times 65,536, plus the change's number within its transaction. A commit record takes at least 32 bytes
/// of WAL, so the next transaction's commit LSN is at least 32 higher and its positions start above every position of
/// this one as long as a transaction has at most <see cref="MaxChangesPerTransaction"/> changes. Positions grow in
/// commit order, which is the order pgoutput delivers transactions in. Pure.
/// </summary>
internal static class ReplicationPosition
{
    /// <summary>Bits below the commit LSN.</summary>
    public const int Shift = 16;

    /// <summary>The most changes of one transaction that get positions of their own (32 × 65,536 − 1).</summary>
    public const long MaxChangesPerTransaction = (32L << Shift) - 1;

    /// <summary>The highest commit LSN whose positions fit a signed 64-bit integer (128 TiB of WAL).</summary>
    public const ulong MaxCommitLsn = (ulong)long.MaxValue >> Shift;

    /// <summary>The highest commit LSN whose positions a JavaScript number holds exactly (2^53: 128 GiB of WAL).</summary>
    public const ulong MaxExactJavaScriptLsn = (1UL << 53) >> Shift;

    /// <summary>The position of change <paramref name="sequence"/> (from 1) of the transaction committed at <paramref name="commitLsn"/>.</summary>
    public static long Of(ulong commitLsn, long sequence)
    {
        if (commitLsn > MaxCommitLsn)
        {
            throw new OverflowException($"Commit LSN {commitLsn:X} is beyond what positions can hold.");
        }

        if (sequence is < 1 or > MaxChangesPerTransaction)
        {
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"A transaction's changes beyond {MaxChangesPerTransaction} have no position.");
        }

        return ((long)commitLsn << Shift) + sequence;
    }

    /// <summary>The position just below every change of transactions committed at or after <paramref name="lsn"/>.</summary>
    public static long Below(ulong lsn) => lsn > MaxCommitLsn ? long.MaxValue : (long)lsn << Shift;
}
