namespace PgNotify.Client.Internal;

/// <summary>A token bucket over the injected clock: at most <c>perSecond</c> requests a second, and pauses after <c>rate_limited</c>.</summary>
internal sealed class RequestPacer(TimeProvider time, int perSecond)
{
    private readonly Lock _gate = new();
    private double _tokens = perSecond;
    private long _updated = time.GetTimestamp();
    private long _pausedUntil;

    /// <summary>Waits until one request may be sent, and takes its token.</summary>
    public async ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            TimeSpan wait;
            lock (_gate)
            {
                var now = time.GetTimestamp();
                _tokens = Math.Min(perSecond, _tokens + (time.GetElapsedTime(_updated, now).TotalSeconds * perSecond));
                _updated = now;
                var paused = _pausedUntil > now ? time.GetElapsedTime(now, _pausedUntil) : TimeSpan.Zero;
                if (paused <= TimeSpan.Zero && _tokens >= 1)
                {
                    _tokens -= 1;
                    return;
                }

                var refill = TimeSpan.FromSeconds((1 - Math.Min(_tokens, 1)) / perSecond);
                wait = paused > refill ? paused : refill;
            }

            await Task.Delay(wait < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : wait, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends nothing for <paramref name="pause"/>.</summary>
    public void Pause(TimeSpan pause)
    {
        lock (_gate)
        {
            _pausedUntil = time.GetTimestamp() + (long)(pause.TotalSeconds * time.TimestampFrequency);
        }
    }
}
