namespace PgNotify.Internal;

/// <summary>The public view of the listener's parts: connection state, the source's position, failed loops and problems.</summary>
internal sealed class ListenerStatus(ListenerConnection connection, IChangeSource source, LoopSupervisor supervisor) : IPgNotifyStatus
{
    public PgListenerState State => connection.State;

    public long ReconnectCount => connection.ReconnectCount;

    public Exception? LastError => connection.LastError;

    public double? NotifyQueueUsage => connection.NotifyQueueUsage;

    public long DeliveredPosition => source.DeliveredPosition;

    public IReadOnlyList<string> FailedLoops => [.. supervisor.Status.Failures.Select(f => f.Loop)];

    public IReadOnlyList<string> Problems => supervisor.Status.Problems;

    public Task WaitUntilListeningAsync(CancellationToken cancellationToken = default) => connection.WaitUntilListeningAsync(cancellationToken);

    public Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken = default) => source.CaughtUp.WaitAsync(cancellationToken);
}
