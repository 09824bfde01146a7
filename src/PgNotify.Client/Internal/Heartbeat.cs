namespace PgNotify.Client.Internal;

/// <summary>
/// Liveness of one connection: any frame proves it. After <c>interval</c> without a frame, a ping; without a frame
/// within <c>timeout</c> of the ping, the connection is given up on. Time comes from the injected <see cref="TimeProvider"/>.
/// </summary>
internal sealed class Heartbeat(TimeProvider time, TimeSpan interval, TimeSpan timeout, Func<CancellationToken, ValueTask> sendPing, Action onTimeout)
{
    private long _lastFrame = time.GetTimestamp();

    public bool Enabled => interval != Timeout.InfiniteTimeSpan;

    /// <summary>Called by the receive loop for every frame.</summary>
    public void FrameReceived() => Volatile.Write(ref _lastFrame, time.GetTimestamp());

    /// <summary>Runs until the connection is given up on (returns after calling onTimeout) or the token is cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        while (true)
        {
            var idle = time.GetElapsedTime(Volatile.Read(ref _lastFrame));
            if (idle < interval)
            {
                await Task.Delay(interval - idle, time, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var pingAt = time.GetTimestamp();
            await sendPing(cancellationToken).ConfigureAwait(false);
            await Task.Delay(timeout, time, cancellationToken).ConfigureAwait(false);
            if (Volatile.Read(ref _lastFrame) < pingAt)
            {
                onTimeout();
                return;
            }
        }
    }
}
