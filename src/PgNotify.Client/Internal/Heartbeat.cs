namespace PgNotify.Client.Internal;

/// <summary>
/// Liveness of one connection: any frame proves it. After <c>interval</c> without a frame, a ping; without a frame
/// within <c>timeout</c> of the ping, the connection is given up on. One timer of the injected
/// <see cref="TimeProvider"/> drives it (so a fake clock drives it in tests); its one lock guards the two timestamps.
/// </summary>
internal sealed class Heartbeat : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _timeout;
    private readonly Func<CancellationToken, ValueTask> _sendPing;
    private readonly Action _onTimeout;
    private readonly CancellationToken _cancellationToken;
    private readonly Lock _gate = new();
    private readonly ITimer? _timer;
    private long _lastFrame;
    private long _pingSentAt;

    /// <summary>Starts watching (unless <paramref name="interval"/> is infinite) until disposed or cancelled.</summary>
    public Heartbeat(TimeProvider time, TimeSpan interval, TimeSpan timeout, Func<CancellationToken, ValueTask> sendPing, Action onTimeout, CancellationToken cancellationToken)
    {
        _time = time;
        _interval = interval;
        _timeout = timeout;
        _sendPing = sendPing;
        _onTimeout = onTimeout;
        _cancellationToken = cancellationToken;
        _lastFrame = time.GetTimestamp();
        if (interval != Timeout.InfiniteTimeSpan)
        {
            _timer = time.CreateTimer(_ => Tick(), null, interval, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Called by the receive loop for every frame.</summary>
    public void FrameReceived()
    {
        lock (_gate)
        {
            _lastFrame = _time.GetTimestamp();
        }
    }

    public void Dispose() => _timer?.Dispose();

    private void Tick()
    {
        if (_cancellationToken.IsCancellationRequested)
        {
            return;
        }

        bool ping;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (_pingSentAt != 0 && _lastFrame < _pingSentAt)
            {
                ping = false; // no frame since the ping, for the whole timeout
            }
            else
            {
                _pingSentAt = 0;
                var idle = _time.GetElapsedTime(_lastFrame, now);
                if (idle < _interval)
                {
                    _timer!.Change(_interval - idle, Timeout.InfiniteTimeSpan);
                    return;
                }

                _pingSentAt = now;
                _timer!.Change(_timeout, Timeout.InfiniteTimeSpan);
                ping = true;
            }
        }

        if (!ping)
        {
            _onTimeout();
            return;
        }

        _ = SendPingAsync();
    }

    private async Task SendPingAsync()
    {
        try
        {
            await _sendPing(_cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The connection is ending.
        }
    }
}
