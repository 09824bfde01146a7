namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The write rounds of <see cref="PgChangeWebSocketOptions.WriteCoalescingDelay"/>: a socket that wrote less than the
/// delay ago hands its writer here instead of writing, and one timer for all sockets starts the writers that waited,
/// once per delay while any waits. Off (no timer) when the delay is zero.
/// </summary>
internal sealed class DeferredWrites : IDisposable
{
    private readonly Lock _gate = new();
    private readonly ITimer? _timer;
    private List<OutboxWriter> _waiting = [];
    private bool _armed;

    public DeferredWrites(TimeSpan delay, TimeProvider time)
    {
        Delay = delay;
        Time = time;
        if (delay > TimeSpan.Zero)
        {
            _timer = time.CreateTimer(static state => ((DeferredWrites)state!).Round(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The delay; zero when writes are never put off.</summary>
    public TimeSpan Delay { get; }

    /// <summary>True when writes may be put off (a delay is set).</summary>
    public bool Enabled => _timer is not null;

    public TimeProvider Time { get; }

    /// <summary>True when a write that started at <paramref name="lastWrite"/> (a <see cref="TimeProvider.GetTimestamp"/>) is too recent for another now.</summary>
    public bool TooSoon(long lastWrite) => Enabled && lastWrite != 0 && Time.GetElapsedTime(lastWrite) < Delay;

    /// <summary>Starts <paramref name="writer"/> (<see cref="OutboxWriter.ResumeDeferred"/>) at the next round.</summary>
    public void Add(OutboxWriter writer)
    {
        lock (_gate)
        {
            _waiting.Add(writer);
            if (!_armed)
            {
                _armed = true;
                _timer!.Change(Delay, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Number of writers waiting for the next round (for tests).</summary>
    internal int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waiting.Count;
            }
        }
    }

    private void Round()
    {
        List<OutboxWriter> due;
        lock (_gate)
        {
            due = _waiting;
            _waiting = [];
            _armed = false;
        }

        // Each writer catches its own failures (a socket that fails stops alone), so one socket cannot end the round.
        foreach (var writer in due)
        {
            writer.ResumeDeferred();
        }
    }

    public void Dispose() => _timer?.Dispose();
}
