using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The fan-out: reads the change feed, routes each change by table to the sockets subscribed to it, encodes it once
/// (only if some socket wants it) and queues the same bytes on each socket. Never waits on a socket.
/// </summary>
internal sealed partial class PgChangeRouter : BackgroundService
{
    private readonly IPgNotifyStatus _listener;
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
    /// <summary>The sessions given changes in the current batch; they start writing once the batch is routed.</summary>
    private readonly HashSet<SocketSession> _toStart = [];
    private readonly CancellationTokenRegistration _stoppingRegistration;
    private long _routingPosition;
    private readonly WebSocketMetrics _metrics;
    private readonly TimeProvider _time;
    private int _state;
    private int _restarts;
    private long _failedChanges;
    private Exception? _lastFault;
    private static readonly TimeSpan RestartInitialDelay = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan RestartMaxDelay = TimeSpan.FromSeconds(5);

    public PgChangeRouter(
        IPgChangeFeed feed,
        IPgNotifyStatus listener,
        IOptions<PgNotifyOptions> notifyOptions,
        IOptions<PgChangeWebSocketOptions> options,
        IHostApplicationLifetime lifetime,
        WebSocketMetrics metrics,
        TimeProvider time,
        ILogger<PgChangeRouter> logger)
    {
        _listener = listener;
        _metrics = metrics;
        _time = time;
        _logger = logger;
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

    /// <summary>
    /// The head position for a socket whose routes were just added with <see cref="Subscribe"/> (lossless delivery):
    /// every change above it is routed with those routes, and every change at or below it was handed to the fan-out
    /// before this call. Read it after <see cref="Subscribe"/>, never before.
    /// </summary>
    public long HeadPosition
    {
        get
        {
            // Pairs with the Interlocked.Exchange in RouteEvent (a full fence on both sides): either the fan-out took
            // the routes after Subscribe changed them, or this read sees the position of the change it is routing.
            Interlocked.MemoryBarrier();
            return Math.Max(Volatile.Read(ref _routingPosition), _listener.DeliveredPosition);
        }
    }

    public int SessionCount => _sessions.Count;

    public bool IsExposed(PgTableName table) => _exposed.Contains(table);


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

    /// <summary>The state of the fan-out loop, for the health check: anything but Running means changes are not being routed.</summary>
    public PgRouterState State => (PgRouterState)Volatile.Read(ref _state);

    /// <summary>How often the fan-out loop died and was restarted since the app started.</summary>
    public int RestartCount => Volatile.Read(ref _restarts);

    /// <summary>How many changes (or gaps) failed to route because of an unexpected exception since the app started.</summary>
    public long FailedChangeCount => Interlocked.Read(ref _failedChanges);

    /// <summary>The exception that last ended the fan-out loop, if it ever died.</summary>
    public Exception? LastFault => Volatile.Read(ref _lastFault);

    /// <summary>Test seam: runs before each event is routed, inside the per-event error handling.</summary>
    internal Action<PgChangeEvent>? BeforeRoute { get; set; }

    /// <summary>Test seam: runs before a change is matched and authorized for one socket, inside that socket's error handling.</summary>
    internal Action<PgChange, SocketSession>? BeforeRouteTo { get; set; }

    /// <summary>Test seam: runs once per batch, outside the per-event error handling (as a bug of the loop itself would).</summary>
    internal Action? BeforeBatch { get; set; }

    /// <summary>
    /// Supervises the fan-out loop: an exception that escapes it (a bug; bad data is handled per change inside it) is
    /// logged, counted, reported through <see cref="State"/>, every socket is told to resync (the change in hand may be
    /// lost), and the loop starts again after a short delay. Only the app's shutdown ends it.
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var delay = RestartInitialDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            Volatile.Write(ref _state, (int)PgRouterState.Running);
            try
            {
                await RouteLoopAsync(stoppingToken).ConfigureAwait(false);
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Volatile.Write(ref _state, (int)PgRouterState.Restarting);
                Volatile.Write(ref _lastFault, ex);
                var restarts = Interlocked.Increment(ref _restarts);
                _metrics.RouterRestarted();
                Log.RouterFaulted(_logger, restarts, delay, ex);
                _toStart.Clear();
                foreach (var session in _sessions.Keys)
                {
                    session.EnqueueResync(Protocol.ResyncReasons.ServerError, null);
                }
            }

            try
            {
                await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, RestartMaxDelay.Ticks));
        }
    }

    private async Task RouteLoopAsync(CancellationToken stoppingToken)
    {
        var reader = _feed.Reader;
        while (await reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
        {
            BeforeBatch?.Invoke();

            // Route what is at hand first, then write: a socket that got several changes sends them in one write.
            for (var routed = 0; routed < _changesPerWrite && reader.TryRead(out var item); routed++)
            {
                RouteEventSafely(item);
            }

            foreach (var session in _toStart)
            {
                session.StartWriting();
            }

            _toStart.Clear();
        }
    }

    /// <summary>Routes one event; an unexpected exception affects only this event, and the sockets it was for resync.</summary>
    private void RouteEventSafely(PgChangeEvent item)
    {
        try
        {
            BeforeRoute?.Invoke(item);
            RouteEvent(item);
        }
        catch (Exception ex)
        {
            Interlocked.Increment(ref _failedChanges);
            _metrics.RouteFailed();
            var table = item is PgChange change ? change.Table.ToString() : "(gap)";
            Log.RouteFailed(_logger, table, ex);

            // The change may have reached some of its sockets and not others: those subscribed to its table reload.
            if (item is PgChange failed && _routes.TryGetValue(failed.Table, out var set))
            {
                foreach (var route in set.Snapshot ?? set.Rebuild(_routesGate))
                {
                    route.Session.EnqueueResync(Protocol.ResyncReasons.ServerError, 1);
                }
            }
        }
    }

    private void RouteEvent(PgChangeEvent item)
    {
        if (item is PgChange change)
        {
            if (change.Position is { } position)
            {
                // Published before the routes are read (see HeadPosition): a socket subscribing meanwhile either is
                // among the routes of this change, or reports a head position at or above it.
                Interlocked.Exchange(ref _routingPosition, position);
            }

            RouteChange(change);
        }
        else if (item is PgChangeGap gap)
        {
            var reason = gap.Reason switch
            {
                PgChangeGapReason.ListenerReconnected => Protocol.ResyncReasons.ListenerReconnected,
                PgChangeGapReason.Unreadable when Lossless => Protocol.ResyncReasons.PositionExpired,
                _ => Protocol.ResyncReasons.ListenerOverflow,
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
        byte[]? frameWithoutOld = null;
        PgChange? oldRow = null;
        foreach (var route in routes)
        {
            ChangeAccess access;
            try
            {
                BeforeRouteTo?.Invoke(change, route.Session);
                access = route.Subscription.Matches(change) ? route.Session.AuthorizeChange(change, ref oldRow) : ChangeAccess.Denied;
            }
            catch (Exception ex)
            {
                // Deciding for one socket failed: that socket may have missed the change, the others go on.
                Interlocked.Increment(ref _failedChanges);
                _metrics.RouteFailed();
                Log.RouteToSocketFailed(_logger, change.Table.ToString(), route.Session.Id, ex);
                route.Session.EnqueueResync(Protocol.ResyncReasons.ServerError, 1);
                continue;
            }

            if (access == ChangeAccess.Denied)
            {
                continue;
            }

            var bytes = access == ChangeAccess.WithoutOld
                ? frameWithoutOld ??= Frames.Change(change, _encodeBuffer, includeOld: false)
                : frame ??= Frames.Change(change, _encodeBuffer);
            route.Session.EnqueueChange(bytes, change, route.Subscription);
            _toStart.Add(route.Session);
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
}
