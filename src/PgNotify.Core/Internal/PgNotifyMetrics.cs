using System.Diagnostics.Metrics;

namespace PgNotify.Internal;

/// <summary>The listener side of the <c>PgNotify</c> meter (System.Diagnostics.Metrics, OpenTelemetry-style names).</summary>
internal sealed class PgNotifyMetrics
{
    public const string MeterName = PgNotifyDiagnostics.MeterName;

    private readonly Counter<long> _notifications;
    private readonly Counter<long> _reconnects;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _gaps;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _itemErrors;
    private readonly Counter<long> _loopRestarts;
    private readonly Counter<long> _snapshots;
    private Func<int> _state = () => 0;
    private Func<double?> _queueUsage = () => null;

    public PgNotifyMetrics(IMeterFactory meterFactory)
    {
        Meter = meterFactory.Create(MeterName);
        _notifications = Meter.CreateCounter<long>("pgnotify.listener.notifications", "{notification}", "Notifications the listener received from PostgreSQL.");
        _reconnects = Meter.CreateCounter<long>("pgnotify.listener.reconnects", "{reconnect}", "Times the listener lost its connection and connected again.");
        _dropped = Meter.CreateCounter<long>("pgnotify.changes.dropped", "{change}", "Changes dropped for an in-process consumer whose buffer was full.");
        _gaps = Meter.CreateCounter<long>("pgnotify.listener.gaps", "{gap}", "Points where changes may have been missed, by reason.");
        _rejected = Meter.CreateCounter<long>("pgnotify.listener.notifications.rejected", "{notification}",
            "Notifications on the channel that PgNotify's trigger did not write (forged, malformed, or a replayed or mismatched large-row reference), by reason; dropped without a gap.");
        _itemErrors = Meter.CreateCounter<long>("pgnotify.listener.errors", "{error}",
            "Items a loop failed to handle (an unreadable oversized row or log row, an unexpected exception), by loop; each cost that item alone.");
        _loopRestarts = Meter.CreateCounter<long>("pgnotify.loop.restarts", "{restart}",
            "Times a PgNotify loop died and was restarted by its supervisor, by loop.");
        _snapshots = Meter.CreateCounter<long>("pgnotify.snapshots", "{snapshot}",
            "Table snapshots begun (IPgTableSnapshots), by outcome: started, or failed to begin.");
        Meter.CreateObservableGauge("pgnotify.listener.state", () => _state(), "{state}",
            "The listener's state: 0 stopped, 1 connecting, 2 listening, 3 reconnecting.");
        Meter.CreateObservableGauge("pgnotify.notify_queue.usage", ObserveQueueUsage, "1",
            "PostgreSQL's pg_notification_queue_usage(): the fraction of the NOTIFY queue in use.");
    }

    public Meter Meter { get; }

    public void NotificationReceived() => _notifications.Add(1);

    public void Reconnected() => _reconnects.Add(1);

    public void ChangeDropped(string consumer) => _dropped.Add(1, new KeyValuePair<string, object?>("pgnotify.consumer", consumer));

    public void Gap(PgChangeGapReason reason) => _gaps.Add(1, new KeyValuePair<string, object?>("pgnotify.gap.reason", reason.ToString()));

    public void NotificationRejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("pgnotify.reason", reason));

    public void ItemFailed(string loop) => _itemErrors.Add(1, new KeyValuePair<string, object?>("pgnotify.loop", loop));

    public void LoopRestarted(string loop) => _loopRestarts.Add(1, new KeyValuePair<string, object?>("pgnotify.loop", loop));

    public void SnapshotStarted() => _snapshots.Add(1, new KeyValuePair<string, object?>("pgnotify.outcome", "started"));

    public void SnapshotFailed() => _snapshots.Add(1, new KeyValuePair<string, object?>("pgnotify.outcome", "failed"));

    public void ObserveState(Func<int> state) => _state = state;

    public void ObserveQueueUsage(Func<double?> usage) => _queueUsage = usage;

    private IEnumerable<Measurement<double>> ObserveQueueUsage() =>
        _queueUsage() is { } usage ? [new Measurement<double>(usage)] : [];
}
