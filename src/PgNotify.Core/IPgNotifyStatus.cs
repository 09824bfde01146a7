namespace PgNotify;

/// <summary>
/// What PgNotify's listener is doing, for applications and health checks: resolve it from the service provider
/// (registered by <c>AddPgNotifyCore</c> and <c>AddPgNotify</c>). Every member is safe to read from any thread.
/// </summary>
public interface IPgNotifyStatus
{
    /// <summary>The listening connection's current state.</summary>
    PgListenerState State { get; }

    /// <summary>How many times the listener has connected again after losing its connection.</summary>
    long ReconnectCount { get; }

    /// <summary>The error that last cost the listener its connection, or <see langword="null"/>.</summary>
    Exception? LastError { get; }

    /// <summary>
    /// The fill level of PostgreSQL's NOTIFY queue (<c>pg_notification_queue_usage()</c>, 0 to 1) at the last probe, or
    /// <see langword="null"/> before the first.
    /// </summary>
    double? NotifyQueueUsage { get; }

    /// <summary>
    /// With lossless delivery, the position through which every change has been handed to consumers (all lower
    /// positions are delivered or known never to exist); otherwise 0.
    /// </summary>
    long DeliveredPosition { get; }

    /// <summary>The names of PgNotify's loops that died and have not yet recovered (connect, dispatcher, maintenance).</summary>
    IReadOnlyList<string> FailedLoops { get; }

    /// <summary>Setup problems that cost changes until fixed, each saying what to change (a missing GRANT, a table not enabled).</summary>
    IReadOnlyList<string> Problems { get; }

    /// <summary>Completes when the listener is listening: from then on, every committed change of a watched table is received.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes once the state is <see cref="PgListenerState.Listening"/>.</returns>
    Task WaitUntilListeningAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// With lossless delivery, completes once the change log is settled up to where it stood when the listener started,
    /// so that every position at or below <see cref="DeliveredPosition"/> can be replayed; otherwise at once.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when the listener has caught up.</returns>
    Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken = default);
}
