using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PgNotify.Internal;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The fan-out: reads the change feed, routes each change by table to the sockets subscribed to it, encodes it once
/// (only if some socket wants it) and queues the same bytes on each socket. Never waits on a socket.
/// </summary>
internal sealed partial class PgChangeRouter : BackgroundService
{
    private readonly PgNotifyListener _listener;
    private readonly PgChangeSubscription _feed;
    private readonly HashSet<PgTableName> _exposed;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<PgTableName, RouteSet> _routes = new();
    private readonly ConcurrentDictionary<SocketSession, byte> _sessions = new();
    private readonly Lock _routesGate = new();
    /// <summary>At most this many changes are routed before the sockets they went to start writing.</summary>
    private const int MaxChangesPerWrite = 256;

    /// <summary>
    /// <see cref="MaxChangesPerWrite"/>, but never more than half a socket's send queue: a burst routed at once must
    /// not overflow the queue of a socket that reads fast.
    /// </summary>
    private readonly int _changesPerWrite;

    private readonly ArrayBufferWriter<byte> _encodeBuffer = new(4096);
    private readonly List<SocketSession> _toStart = [];
    private readonly CancellationTokenRegistration _stoppingRegistration;
    private long _lastPosition;

    public PgChangeRouter(
        IPgChangeFeed feed,
        PgChangeLog changeLog,
        PgNotifyListener listener,
        IOptions<PgNotifyOptions> notifyOptions,
        IOptions<PgChangeWebSocketOptions> options,
        IHostApplicationLifetime lifetime,
        ILogger<PgChangeRouter> logger)
    {
        _listener = listener;
        _logger = logger;
        ChangeLog = changeLog;
        Lossless = notifyOptions.Value.LosslessDelivery;
        var exposed = options.Value.ExposedTables.Count > 0 ? options.Value.ExposedTables : notifyOptions.Value.Tables;
        _exposed = [.. exposed.Select(PgTableName.Parse)];
        _changesPerWrite = Math.Clamp(options.Value.SendQueueCapacity / 2, 1, MaxChangesPerWrite);
        // Subscribe now, before the listener starts, so the fan-out sees every change. The fan-out reads as fast as it
        // can; a socket's slowness is absorbed by that socket's own queue.
        _feed = feed.Subscribe("websocket-fanout", capacity: Math.Max(notifyOptions.Value.ConsumerCapacity, 100_000));
        _stoppingRegistration = lifetime.ApplicationStopping.Register(CloseAllForShutdown);
    }

    public bool Lossless { get; }

    public PgChangeLog ChangeLog { get; }

    /// <summary>The position of the last change routed (lossless delivery): every lower position has been routed too.</summary>
    public long LastPosition => Math.Max(Volatile.Read(ref _lastPosition), _listener.DeliveredPosition);

    public int SessionCount => _sessions.Count;

    public bool IsExposed(PgTableName table) => _exposed.Contains(table);

    public Task WaitUntilListeningAsync(CancellationToken cancellationToken) => _listener.WaitUntilListeningAsync(cancellationToken);

    public Task WaitUntilCaughtUpAsync(CancellationToken cancellationToken) => _listener.WaitUntilCaughtUpAsync(cancellationToken);

    public void Register(SocketSession session) => _sessions.TryAdd(session, 0);

    public void Unregister(SocketSession session) => _sessions.TryRemove(session, out _);

    public void Subscribe(SocketSession session, IEnumerable<Subscription> subscriptions)
    {
        lock (_routesGate)
        {
            foreach (var subscription in subscriptions)
            {
                var set = _routes.GetOrAdd(subscription.Table, static _ => new RouteSet());
                set.Members[session] = new Route(session, subscription);
                set.Invalidate();
            }
        }
    }

    public void Unsubscribe(SocketSession session, IEnumerable<PgTableName> tables)
    {
        lock (_routesGate)
        {
            foreach (var table in tables)
            {
                if (_routes.TryGetValue(table, out var set) && set.Members.Remove(session))
                {
                    set.Invalidate();
                    if (set.Members.Count == 0)
                    {
                        _routes.TryRemove(table, out _);
                    }
                }
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var reader = _feed.Reader;
            while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                // Route what is at hand first, then write: a socket that got several changes sends them in one write.
                for (var routed = 0; routed < _changesPerWrite && reader.TryRead(out var item); routed++)
                {
                    RouteEvent(item);
                }

                foreach (var session in _toStart)
                {
                    session.PendingStart = false;
                    session.StartWriting();
                }

                _toStart.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void RouteEvent(PgChangeEvent item)
    {
        if (item is PgChange change)
        {
            RouteChange(change);
            if (change.Position is { } position)
            {
                Volatile.Write(ref _lastPosition, position);
            }
        }
        else if (item is PgChangeGap gap)
        {
            var reason = gap.Reason switch
            {
                PgChangeGapReason.ListenerReconnected => "listener_reconnected",
                PgChangeGapReason.Unreadable when Lossless => "position_expired",
                _ => "listener_overflow",
            };
            foreach (var session in _sessions.Keys)
            {
                session.EnqueueResync(reason, gap.DroppedCount);
            }
        }
    }

    private void RouteChange(PgChange change)
    {
        if (!_routes.TryGetValue(change.Table, out var set))
        {
            return;
        }

        var routes = set.Snapshot ?? set.Rebuild(_routesGate);

        byte[]? frame = null;
        foreach (var route in routes)
        {
            if (!route.Subscription.Matches(change) || !route.Session.AuthorizeChange(change))
            {
                continue;
            }

            frame ??= Frames.Change(change, _encodeBuffer);
            route.Session.EnqueueChange(frame, change);
            if (!route.Session.PendingStart)
            {
                route.Session.PendingStart = true;
                _toStart.Add(route.Session);
            }
        }
    }

    private void CloseAllForShutdown()
    {
        Log.ClosingForShutdown(_logger, _sessions.Count);
        foreach (var session in _sessions.Keys)
        {
            session.RequestClose(WebSocketCloseStatus.EndpointUnavailable, "server shutting down");
        }
    }

    public override void Dispose()
    {
        _stoppingRegistration.Dispose();
        _feed.Dispose();
        base.Dispose();
    }

    private readonly record struct Route(SocketSession Session, Subscription Subscription);

    /// <summary>
    /// The sockets subscribed to one table. Subscribing and unsubscribing change <see cref="Members"/> under the routes
    /// lock and drop the snapshot; the fan-out routes from the snapshot, rebuilt when it next needs it. So a thousand
    /// sockets subscribing cost a thousand dictionary updates, not a thousand copies of an ever longer array.
    /// </summary>
    private sealed class RouteSet
    {
        private Route[]? _snapshot;

        public Dictionary<SocketSession, Route> Members { get; } = [];

        public Route[]? Snapshot => Volatile.Read(ref _snapshot);

        public void Invalidate() => Volatile.Write(ref _snapshot, null);

        public Route[] Rebuild(Lock gate)
        {
            lock (gate)
            {
                var routes = _snapshot ?? [.. Members.Values];
                Volatile.Write(ref _snapshot, routes);
                return routes;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "PgNotify is closing {Count} socket(s) with 1001: the server is shutting down.")]
        public static partial void ClosingForShutdown(ILogger logger, int count);
    }
}
