namespace PgNotify.Internal;

/// <summary>
/// Where changes come from: one implementation per source, chosen at registration from the options
/// (<see cref="NotificationSource"/> for live delivery, <see cref="ChangeLogSource"/> with
/// <see cref="PgNotifyOptions.LosslessDelivery"/>), so another source (logical replication) slots in beside them.
/// A source reads the listener's <see cref="NotificationInbox"/> on the dispatcher loop and publishes to the feed.
/// </summary>
internal interface IChangeSource
{
    /// <summary>Whether the listener's reconnect is itself a gap (live) or only a wake-up (lossless).</summary>
    bool LosesChangesOnReconnect { get; }

    /// <summary>The position through which every change has been handed to consumers; 0 for a source without positions.</summary>
    long DeliveredPosition { get; }

    /// <summary>Completes once the source is settled up to where the database stood when it started.</summary>
    Task CaughtUp { get; }

    /// <summary>Runs on the connect loop once LISTEN holds, before anyone is told changes flow.</summary>
    Task OnListeningAsync(CancellationToken cancellationToken);

    /// <summary>The dispatcher loop: reads the inbox and publishes changes until the inbox completes or the host stops.</summary>
    Task RunAsync(CancellationToken stoppingToken);

    /// <summary>The dispatcher loop died: the item it held may be lost, and consumers are told.</summary>
    void OnDispatcherFailed();
}

/// <summary>Publishing a gap: counted in metrics, then handed to every consumer.</summary>
internal static class ChangeSourceGaps
{
    public static void PublishGap(this PgChangeFeed feed, PgNotifyMetrics metrics, PgChangeGapReason reason, long? dropped, DateTimeOffset now)
    {
        metrics.Gap(reason);
        feed.Publish(new PgChangeGap(reason, dropped, now));
    }
}
