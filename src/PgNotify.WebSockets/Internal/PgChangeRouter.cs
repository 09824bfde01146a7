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
    private readonly FanOutSupervisor _supervisor;

    public PgChangeRouter(
        IPgChangeFeed feed,
        IPgNotifyStatus listener,
        IOptions<PgNotifyOptions> notifyOptions,
        IOptions<PgChangeWebSocketOptions> options,
        IHostApplicationLifetime lifetime,
        FanOutSupervisor supervisor,
        TimeProvider time,
        ILogger<PgChangeRouter> logger)
    {
        DeferredWrites = new DeferredWrites(options.Value.WriteCoalescingDelay, time);
        _listener = listener;
        _supervisor = supervisor;
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

    /// <summary>The write rounds of <see cref="PgChangeWebSocketOptions.WriteCoalescingDelay"/>, shared by every socket.</summary>
    public DeferredWrites DeferredWrites { get; }

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

    /// <summary>
    /// True when <paramref name="table"/> is one the app exposes; <paramref name="exposed"/> is then the router's own
    /// instance of its name, which a subscription keeps instead of the strings parsed from the client's request.
    /// </summary>
    public bool TryGetExposed(PgTableName table, out PgTableName exposed) => _exposed.TryGetValue(table, out exposed);


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

    /// <summary>Test seam: runs before each event is routed, inside the per-event error handling.</summary>
    internal Action<PgChangeEvent>? BeforeRoute { get; set; }

    /// <summary>Test seam: runs before a change is matched and authorized for one socket, inside that socket's error handling.</summary>
    internal Action<PgChange, SocketSession>? BeforeRouteTo { get; set; }

    /// <summary>Test seam: runs once per batch, outside the per-event error handling (as a bug of the loop itself would).</summary>
    internal Action? BeforeBatch { get; set; }

    /// <summary>
    /// Runs the fan-out loop under its <see cref="FanOutSupervisor"/>: a loop that dies restarts, and meanwhile every
    /// socket is told to resync (the change in hand may be lost).
    /// </summary>
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => _supervisor.RunAsync(RouteLoopAsync, ResyncAllAfterFault, stoppingToken);

    private void ResyncAllAfterFault()
    {
        _toStart.Clear();
        foreach (var session in _sessions.Keys)
        {
            session.EnqueueResync(Protocol.ResyncReasons.ServerError, null);
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
            _supervisor.ChangeFailed();
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
                _supervisor.ChangeFailed();
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
        DeferredWrites.Dispose();
        base.Dispose();
    }
}
