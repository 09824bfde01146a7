namespace PgNotify;

/// <summary>
/// The in-process stream of changes the listener receives. Each subscriber gets every change through its own bounded
/// buffer, so a slow subscriber never delays the listener or other subscribers.
/// </summary>
/// <remarks>
/// Back-pressure policy: when a subscriber's buffer (<see cref="PgNotifyOptions.ConsumerCapacity"/>) is full, further
/// changes are dropped for that subscriber only, counted in <see cref="PgChangeSubscription.DroppedCount"/> and in the
/// <c>pgnotify.changes.dropped</c> metric, and once it has room again it receives a <see cref="PgChangeGap"/> with
/// reason <see cref="PgChangeGapReason.ConsumerOverflow"/> and the number lost, before the next change.
/// </remarks>
public interface IPgChangeFeed
{
    /// <summary>Starts receiving every change from now on. Dispose the subscription to stop.</summary>
    /// <param name="name">A name for logs and metrics (for example the consumer's type). Default: <c>anonymous</c>.</param>
    /// <param name="capacity">The subscriber's buffer size; default <see cref="PgNotifyOptions.ConsumerCapacity"/>.</param>
    /// <returns>The subscription, whose reader yields changes and gaps in order.</returns>
    PgChangeSubscription Subscribe(string? name = null, int? capacity = null);
}
