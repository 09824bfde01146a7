namespace PgNotify.Internal;

/// <summary>
/// Under sustained overload notifications are dropped on every item: they are reported (one gap, one log line with
/// the count) at most once per <see cref="Interval"/>, and always eventually, so an overload does not turn into a storm
/// of log lines and resync frames, and no drop goes unreported. Pure bookkeeping over the clock it is given; used by
/// the dispatcher loop only.
/// </summary>
internal sealed class OverflowReport(TimeProvider time)
{
    /// <summary>The shortest time between two reports.</summary>
    internal static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private long _owed;
    private DateTimeOffset _reportedAt = DateTimeOffset.MinValue;

    /// <summary>Whether a drop is waiting to be reported (counting <paramref name="droppedMeanwhile"/>, not yet added).</summary>
    public bool Owed(bool droppedMeanwhile) => _owed != 0 || droppedMeanwhile;

    /// <summary>How long until the owed report is due (zero or less: due now).</summary>
    public TimeSpan DueIn() => _reportedAt + Interval - time.GetUtcNow();

    /// <summary>Adds what was dropped since the last call; says whether to report, and how many, now.</summary>
    /// <param name="dropped">Dropped since the last call.</param>
    /// <param name="flush">Report whatever is owed, even within the interval.</param>
    /// <param name="count">When due: how many to report.</param>
    /// <returns><see langword="true"/> when a report is due now.</returns>
    public bool Add(long dropped, bool flush, out long count)
    {
        _owed += dropped;
        var now = time.GetUtcNow();
        if (_owed > 0 && (flush || now - _reportedAt >= Interval))
        {
            _reportedAt = now;
            count = _owed;
            _owed = 0;
            return true;
        }

        count = 0;
        return false;
    }
}
