using System.Diagnostics.Metrics;

namespace PgNotify.WebSockets.Internal;

/// <summary>The WebSocket side of the <c>PgNotify</c> meter.</summary>
internal sealed class WebSocketMetrics
{
    private readonly UpDownCounter<long> _sockets;
    private readonly UpDownCounter<long> _subscriptions;
    private readonly Counter<long> _frames;
    private readonly Counter<long> _bytes;
    private readonly Counter<long> _writes;
    private readonly Counter<long> _writePaths;
    private readonly Counter<long> _dropped;
    private readonly Counter<long> _slowConsumerCloses;
    private readonly Counter<long> _rejected;
    private readonly Histogram<double> _lag;
    private readonly Counter<long> _routeFailures;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _routerRestarts;
    private readonly Counter<long> _snapshots;
    private readonly Counter<long> _snapshotRows;

    public WebSocketMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(PgNotifyDiagnostics.MeterName);
        _sockets = meter.CreateUpDownCounter<long>("pgnotify.websocket.connections", "{connection}", "Open WebSocket connections.");
        _subscriptions = meter.CreateUpDownCounter<long>("pgnotify.websocket.subscriptions", "{subscription}", "Table subscriptions across open sockets.");
        _frames = meter.CreateCounter<long>("pgnotify.websocket.frames_sent", "{frame}", "Frames sent to sockets, by type.");
        _bytes = meter.CreateCounter<long>("pgnotify.websocket.bytes_sent", "By", "Payload bytes sent to sockets.");
        _writes = meter.CreateCounter<long>("pgnotify.websocket.writes", "{write}",
            "Writes to socket connections; frames_sent divided by writes is how many frames went out together per write.");
        _writePaths = meter.CreateCounter<long>("pgnotify.websocket.write_paths", "{connection}",
            "Plain-TCP sockets by the path their frames take: direct (straight to the connection's socket) or pipe (through Kestrel's output, when the client answered nothing in time).");
        _dropped = meter.CreateCounter<long>("pgnotify.websocket.changes_dropped", "{change}", "Changes dropped for sockets whose send queue was full.");
        _slowConsumerCloses = meter.CreateCounter<long>("pgnotify.websocket.slow_consumer_closes", "{connection}", "Sockets closed because they did not read fast enough.");
        _rejected = meter.CreateCounter<long>("pgnotify.websocket.handshakes_rejected", "{handshake}", "Handshakes refused, by reason.");
        _routeFailures = meter.CreateCounter<long>("pgnotify.websocket.route_failures", "{change}",
            "Changes the fan-out failed to route because of an unexpected exception (log 2110); their subscribers got a resync.");
        _routerRestarts = meter.CreateCounter<long>("pgnotify.websocket.router_restarts", "{restart}",
            "Times the fan-out loop died and was restarted (log 2111).");
        _rateLimited = meter.CreateCounter<long>("pgnotify.websocket.requests_rate_limited", "{request}",
            "Client requests ignored because the socket exceeded MaxMessagesPerSecond.");
        _snapshots = meter.CreateCounter<long>("pgnotify.websocket.snapshots", "{snapshot}",
            "Table snapshots answered to sockets, by outcome: sent, unavailable (no primary key, not readable), failed (database error), timed_out (SnapshotTimeout).");
        _snapshotRows = meter.CreateCounter<long>("pgnotify.websocket.snapshot_rows", "{row}", "Rows sent to sockets in snapshot frames.");
        _lag = meter.CreateHistogram<double>("pgnotify.websocket.send_lag", "s", "Time from the change's trigger to its frame being written to the socket.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    }

    public void SocketOpened() => _sockets.Add(1);

    public void SocketClosed() => _sockets.Add(-1);

    public void SubscriptionsChanged(int delta)
    {
        if (delta != 0)
        {
            _subscriptions.Add(delta);
        }
    }

    public void FrameSent(string type, int bytes)
    {
        _frames.Add(1, new KeyValuePair<string, object?>("pgnotify.frame.type", type));
        _bytes.Add(bytes);
    }

    public void Written() => _writes.Add(1);

    public void WritePathChosen(string path) => _writePaths.Add(1, new KeyValuePair<string, object?>("pgnotify.write.path", path));

    public void ChangeDropped() => _dropped.Add(1);

    public void SlowConsumerClosed() => _slowConsumerCloses.Add(1);

    public void HandshakeRejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("pgnotify.reject.reason", reason));

    public void RequestRateLimited() => _rateLimited.Add(1);

    public void RouteFailed() => _routeFailures.Add(1);

    public void RouterRestarted() => _routerRestarts.Add(1);

    public void SnapshotSent(long rows)
    {
        _snapshots.Add(1, new KeyValuePair<string, object?>("pgnotify.outcome", "sent"));
        _snapshotRows.Add(rows);
    }

    public void SnapshotUnavailable(string outcome) => _snapshots.Add(1, new KeyValuePair<string, object?>("pgnotify.outcome", outcome));

    public void SendLag(TimeSpan lag) => _lag.Record(Math.Max(0, lag.TotalSeconds));
}
