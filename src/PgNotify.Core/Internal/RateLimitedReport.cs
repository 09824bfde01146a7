namespace PgNotify.Internal;

/// <summary>
/// Counts occurrences of something that may come in floods and says when to log it: the first at once, then at most
/// once per interval, with how many occurred since the last line. Thread-safe.
/// </summary>
internal sealed class RateLimitedReport(TimeProvider time, TimeSpan interval)
{
    private readonly Lock _gate = new();
    private long _count;
    private DateTimeOffset _loggedAt = DateTimeOffset.MinValue;

    /// <summary>Counts one occurrence.</summary>
    /// <param name="count">When logging is due: the occurrences since the last line, this one included.</param>
    /// <returns><see langword="true"/> when a line should be logged now.</returns>
    public bool Occurred(out long count)
    {
        lock (_gate)
        {
            _count++;
            var now = time.GetUtcNow();
            if (now - _loggedAt < interval)
            {
                count = 0;
                return false;
            }

            _loggedAt = now;
            count = _count;
            _count = 0;
            return true;
        }
    }
}
