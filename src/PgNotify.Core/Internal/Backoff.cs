namespace PgNotify.Internal;

/// <summary>Exponential backoff with full jitter: a uniform delay in [0, min(cap, initial * 2^attempt)].</summary>
internal sealed class Backoff(TimeSpan initial, TimeSpan cap, Random? random = null)
{
    private readonly Random _random = random ?? Random.Shared;

    public TimeSpan Ceiling(int attempt)
    {
        var factor = Math.Pow(2, Math.Min(attempt, 30));
        var ticks = Math.Min(cap.Ticks, initial.Ticks * factor);
        return TimeSpan.FromTicks((long)ticks);
    }

    public TimeSpan Next(int attempt) => TimeSpan.FromTicks((long)(_random.NextDouble() * Ceiling(attempt).Ticks));
}
