namespace PgNotify.Client.Internal;

/// <summary>Reconnect delays: full jitter above a floor, between half and all of min(max, min * 2^attempt).</summary>
internal static class Backoff
{
    /// <param name="attempt">Failed attempts in a row before this one (0 for the first retry).</param>
    /// <param name="min">The floor the cap starts from.</param>
    /// <param name="max">The cap.</param>
    /// <param name="random">A value in [0, 1).</param>
    public static TimeSpan Delay(int attempt, TimeSpan min, TimeSpan max, double random)
    {
        var cap = Math.Min(max.TotalMilliseconds, min.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt, 0, 30)));
        return TimeSpan.FromMilliseconds((cap / 2) + (Math.Clamp(random, 0, 1) * cap / 2));
    }
}
