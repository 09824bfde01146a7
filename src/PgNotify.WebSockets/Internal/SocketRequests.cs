using System.Data.Common;
using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One socket's requests (subscribe, unsubscribe, ping; docs/protocol.md) and its subscription table. Requests are
/// handled one at a time on the socket's receive loop; the periodic re-authorization takes the same gate, so only one
/// side changes the subscriptions at a time.
/// </summary>
internal sealed class SocketRequests(SocketSession session, PgChangeRouter router)
{
    /// <summary>The close reason of a socket whose resume could not be replayed from the change log.</summary>
    internal const string ReplayFailedReason = "change log unavailable; resume again";

    /// <summary>
    /// One subscription per table, in a small array replaced whole on every change (requests take turns): an idle socket
    /// with one table holds one element, not a dictionary, and the fan-out may read <see cref="Count"/> meanwhile.
    /// </summary>
    private Subscription[] _subscriptions = [];
    private SemaphoreSlim? _gate;
    private Task _snapshotRun = Task.CompletedTask;
    private CancellationTokenSource? _snapshotStop;

    public int Count => Volatile.Read(ref _subscriptions).Length;

    /// <summary>The fan-out this socket's subscriptions are registered with.</summary>
    public PgChangeRouter Router => router;

    /// <summary>Made at the first request (or re-authorization): a socket that never sends one holds none.</summary>
    private SemaphoreSlim Gate => LazyInitializer.EnsureInitialized(ref _gate, static () => new SemaphoreSlim(1, 1));

    /// <summary>
    /// Handles one request message, after any request or re-authorization in progress. A ping is answered at once, even
    /// while a snapshot waits for its turn or streams: the snapshot runs on a task of its own that holds the gate, so the
    /// receive loop goes on reading (and a client's heartbeat is answered).
    /// </summary>
    public async Task HandleAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        if (ClientRequest.Parse(message, out var error) is not { } request)
        {
            session.EnqueueError(error!.Id, error.Code, error.Message);
            return;
        }

        if (request.Type == ClientRequestType.Ping)
        {
            session.EnqueueControl(Frames.Pong(request.Id), Protocol.FrameTypes.Pong);
            return;
        }

        await Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        var release = true;
        try
        {
            if (request.Type == ClientRequestType.Unsubscribe)
            {
                Unsubscribe(request.Id, request.Tables);
            }
            else if (ParseSince(request.Id, request.Since, out var since)
                     && await SubscribeAsync(request.Id, request.Tables, request.Operations, request.Filter, since, request.Snapshot, request.Limit, cancellationToken).ConfigureAwait(false) is { } snapshot)
            {
                release = false;
                _snapshotStop?.Dispose();
                _snapshotStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                _snapshotRun = SendSnapshotThenReleaseAsync(snapshot, _snapshotStop.Token);
            }
        }
        finally
        {
            if (release)
            {
                Gate.Release();
            }
        }
    }

    /// <summary>Ends a snapshot still running (the socket ended) and waits for it.</summary>
    public async Task StopAsync()
    {
        if (_snapshotStop is { } stop)
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }

        await _snapshotRun.ConfigureAwait(false);
        _snapshotStop?.Dispose();
        _snapshotStop = null;
    }

    private async Task SendSnapshotThenReleaseAsync(Func<CancellationToken, Task> send, CancellationToken cancellationToken)
    {
        try
        {
            await send(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The socket ended.
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket closes with 1011, the others are unaffected.
            SocketSession.Log.UnexpectedError(session.Logger, session.Id, ex);
            session.RequestClose(System.Net.WebSockets.WebSocketCloseStatus.InternalServerError, "internal error");
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>The subscription asked for in the handshake's query string (before any request is read).</summary>
    public async Task SubscribeInitialAsync(IReadOnlyList<string> tables, string? sinceText, CancellationToken cancellationToken)
    {
        if (tables.Count == 0)
        {
            session.EnqueueError(RequestId.None, Protocol.ErrorCodes.InvalidMessage, "\"since\" needs \"tables\" to resume.");
        }
        else if (ParseSince(RequestId.None, sinceText, out var since))
        {
            _ = await SubscribeAsync(RequestId.None, tables, ClientRequest.AllOperations, null, since, false, null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Removes every subscription (the socket ended).</summary>
    public void Clear()
    {
        var all = _subscriptions;
        router.Unsubscribe(session, [.. all.Select(s => s.Table)]);
        session.Metrics.SubscriptionsChanged(-all.Length);
        Volatile.Write(ref _subscriptions, []);
    }

    private bool IsSubscribed(PgTableName table)
    {
        foreach (var subscription in _subscriptions)
        {
            if (subscription.Table.Equals(table))
            {
                return true;
            }
        }

        return false;
    }

    private bool ParseSince(RequestId id, string? text, out long? since)
    {
        since = null;
        if (text is null)
        {
            return true;
        }

        if (session.Source.Lossless && Protocol.Positions.TryParse(text, out var value))
        {
            since = value;
            return true;
        }

        session.EnqueueError(id, Protocol.ErrorCodes.InvalidPosition, session.Source.Lossless
            ? "\"since\" must be a position: a whole number of zero or more, as a JSON integer or a string of at most 19 digits."
            : "\"since\" needs lossless delivery, which this server does not have turned on.");
        return false;
    }

    /// <summary>Subscribes; with <paramref name="snapshot"/>, returns the sending of the snapshot, to run after the acknowledgment.</summary>
    private async Task<Func<CancellationToken, Task>?> SubscribeAsync(RequestId id, IReadOnlyList<string> names, IReadOnlyList<PgChangeOperation> operations, RowFilter? filter, long? since, bool snapshot, long? limit, CancellationToken cancellationToken)
    {
        var tables = new List<PgTableName>();
        foreach (var name in names)
        {
            if (!PgTableName.TryParse(name, out var parsed) || !router.TryGetExposed(parsed, out var table))
            {
                session.EnqueueError(id, Protocol.ErrorCodes.UnknownTable, $"Table '{(name.Length > 64 ? name[..64] + "…" : name)}' is not available.");
                return null;
            }

            if (!tables.Contains(table))
            {
                tables.Add(table);
            }
        }

        var added = tables.Count(t => !IsSubscribed(t));
        if (_subscriptions.Length + added > session.Options.MaxSubscriptionsPerSocket)
        {
            session.EnqueueError(id, Protocol.ErrorCodes.TooManySubscriptions, $"A socket may subscribe to at most {session.Options.MaxSubscriptionsPerSocket} tables.");
            return null;
        }

        foreach (var table in tables)
        {
            if (!await session.Authorization.AuthorizeSubscriptionAsync(table, operations).ConfigureAwait(false))
            {
                session.EnqueueError(id, Protocol.ErrorCodes.Forbidden, $"Subscribing to '{table}' is not allowed.");
                return null;
            }
        }

        var subscriptions = tables.Select(t => new Subscription(t, operations, filter) { ResumedThrough = since ?? 0 }).ToList();
        Volatile.Write(ref _subscriptions, [.. _subscriptions.Where(s => !tables.Contains(s.Table)), .. subscriptions]);

        if (since is not null || snapshot)
        {
            // Live changes wait from now on: a resume sends them after its replay, a snapshot after its rows.
            session.Replay.Begin();
        }

        router.Subscribe(session, subscriptions);
        session.Metrics.SubscriptionsChanged(added);

        // Acknowledge only once changes flow: the listener must be listening (it may be reconnecting right now), and
        // with lossless delivery the log must be settled up to where it stood when the listener started (right after a
        // restart), so that the head position in the answer can be resumed from.
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(session.Options.SubscribeTimeout);
            await session.Source.WaitUntilListeningAsync(timeout.Token).ConfigureAwait(false);
            if (session.Source.Lossless)
            {
                await session.Source.WaitUntilCaughtUpAsync(timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Unsubscribe(RequestId.None, tables, acknowledge: false);
            session.Replay.End(long.MaxValue, dropBuffered: true, subscriptions);
            session.EnqueueError(id, Protocol.ErrorCodes.Unavailable, "The server is not connected to the database right now; try again.");
            return null;
        }

        // The head position (lossless delivery): every change above it reaches this socket (live, or through the
        // replay buffer while resuming); those at or below it were handed to the fan-out before the acknowledgment.
        // For a resume it is also where the replay from the log ends.
        long? head = session.Source.Lossless ? router.HeadPosition : null;
        session.EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Subscribed, id, tables, position: head), Protocol.FrameTypes.Subscribed);
        if (since is { } resumeAfter)
        {
            try
            {
                await session.Replay.ReplayAsync(resumeAfter, head!.Value, subscriptions, cancellationToken).ConfigureAwait(false);
            }
            catch (DbException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // The database failed (a closed pooled connection was already retried), not a bug of ours: the client
                // reconnects and resumes from what it has. Live changes stay held until the socket ends.
                SocketSession.Log.ReplayFailed(session.Logger, session.Id, ex);
                session.RequestClose(System.Net.WebSockets.WebSocketCloseStatus.InternalServerError, ReplayFailedReason);
            }
        }
        else if (snapshot)
        {
            // Taken after the subscription is live, so every change it does not hold reaches this socket.
            var snapshots = session.Snapshots;
            return token => snapshots.SendAsync(id, subscriptions, limit, head, token);
        }

        return null;
    }

    private void Unsubscribe(RequestId id, IEnumerable<string> names)
    {
        var tables = new List<PgTableName>();
        foreach (var name in names)
        {
            if (PgTableName.TryParse(name, out var table))
            {
                tables.Add(table);
            }
        }

        Unsubscribe(id, tables, acknowledge: true);
    }

    private void Unsubscribe(RequestId id, List<PgTableName> tables, bool acknowledge)
    {
        var removed = tables.Distinct().Where(IsSubscribed).ToList();
        Volatile.Write(ref _subscriptions, [.. _subscriptions.Where(s => !removed.Contains(s.Table))]);
        router.Unsubscribe(session, removed);
        session.Metrics.SubscriptionsChanged(-removed.Count);
        if (acknowledge)
        {
            session.EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Unsubscribed, id, tables), Protocol.FrameTypes.Unsubscribed);
        }
    }

    /// <summary>Asks <c>AuthorizeSubscription</c> again about every subscribed table; unsubscribes those it refuses.</summary>
    public async Task ReauthorizeAsync(CancellationToken cancellationToken)
    {
        if (session.Options.AuthorizeSubscription is null)
        {
            return;
        }

        // Requests wait meanwhile: the subscriptions are the receive loop's, and only one side changes them at a time.
        var gate = Gate;
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var revoked = new List<PgTableName>();
            foreach (var subscription in _subscriptions)
            {
                if (!await session.Authorization.AuthorizeSubscriptionAsync(subscription.Table, subscription.Operations).ConfigureAwait(false))
                {
                    SocketSession.Log.SubscriptionRevoked(session.Logger, session.Id, subscription.Table);
                    revoked.Add(subscription.Table);
                }
            }

            if (revoked.Count > 0)
            {
                Unsubscribe(RequestId.None, revoked, acknowledge: false);
                session.EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Unsubscribed, RequestId.None, revoked, Protocol.UnsubscribeReasons.Forbidden), Protocol.FrameTypes.Unsubscribed);
            }
        }
        finally
        {
            gate.Release();
        }
    }
}
