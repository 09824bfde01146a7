using System.Threading.RateLimiting;

namespace PgNotify.WebSockets.Internal;

/// <summary>What <see cref="RequestRateLimit.Take"/> decided about one request.</summary>
internal enum RequestRateVerdict
{
    /// <summary>Within the limit: answer it.</summary>
    Allowed,

    /// <summary>The first refusal of a burst: ignore the request and say so once.</summary>
    FirstRefusal,

    /// <summary>Refused again in the same burst: ignore it silently.</summary>
    Refused,

    /// <summary>Refused at more than ten times the limit: close the socket.</summary>
    Flooding,
}

/// <summary>
/// One socket's request rate: a token bucket of <c>MaxMessagesPerSecond</c> tokens, replenished on each request rather
/// than by a timer (so an idle socket costs no timer). Used by the receive loop only.
/// </summary>
internal sealed class RequestRateLimit(int perSecond) : IDisposable
{
    private readonly TokenBucketRateLimiter _bucket = new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = perSecond,
        TokensPerPeriod = perSecond,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        AutoReplenishment = false,
        QueueLimit = 0,
    });

    private int _refusedInBurst;

    /// <summary>The limit, in requests per second.</summary>
    public int PerSecond => perSecond;

    /// <summary>Takes a token for one request.</summary>
    public RequestRateVerdict Take()
    {
        _bucket.TryReplenish();
        using (var lease = _bucket.AttemptAcquire())
        {
            if (lease.IsAcquired)
            {
                _refusedInBurst = 0;
                return RequestRateVerdict.Allowed;
            }
        }

        return _refusedInBurst++ == 0 ? RequestRateVerdict.FirstRefusal
            : _refusedInBurst > perSecond * 10 ? RequestRateVerdict.Flooding
            : RequestRateVerdict.Refused;
    }

    public void Dispose() => _bucket.Dispose();
}
