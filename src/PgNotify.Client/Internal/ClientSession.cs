using Microsoft.Extensions.Logging;

namespace PgNotify.Client.Internal;

/// <summary>
/// One connection's life: its requests go through a <see cref="RequestSender"/>, the heartbeat watches it, and its
/// frames are read into the subscriptions' queues until it ends. Each frame is handled in its own try/catch: whatever
/// the server sends, the session goes on, and a frame it could not use becomes a resync, never a silent loss.
/// Runs on the client's connection loop.
/// </summary>
internal sealed class ClientSession(SocketConnection connection, SubscriptionRegistry registry, PgNotifyClientOptions options, TimeProvider time, ILogger logger)
{
    private readonly RequestSender _requests = new(connection, options, time);
    private long _invalidFrames;
    private CancellationToken _stopping;

    public bool Lossless => connection.Lossless;

    /// <summary>Whether the heartbeat gave up on the connection.</summary>
    public bool TimedOut { get; private set; }

    /// <summary>Asks the server for a subscription (after a reconnect: resuming it where it can).</summary>
    public void Subscribe(ClientSubscription subscription) => _requests.Subscribe(subscription);

    /// <summary>After a resync: a snapshot subscription asks for a new snapshot.</summary>
    public void RequestSnapshot(ClientSubscription subscription) => _requests.RequestSnapshot(subscription);

    public void Unsubscribe(ClientSubscription subscription) => _requests.Unsubscribe(subscription);

    /// <summary>Starts a normal close (1000); the receive loop ends when the server answers it.</summary>
    public Task CloseAsync() => connection.CloseAsync(time);

    /// <summary>Runs until the connection ends (returns, or throws what ended it) or <paramref name="stopping"/> is cancelled.</summary>
    public async Task RunAsync(CancellationToken stopping)
    {
        _stopping = stopping;
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var heartbeat = new Heartbeat(time, options.HeartbeatInterval, options.HeartbeatTimeout, _requests.SendPingAsync, () =>
        {
            TimedOut = true;
            ClientLog.HeartbeatTimeout(logger, (long)options.HeartbeatTimeout.TotalMilliseconds);
            connection.Abort();
        }, ended.Token);
        var sender = _requests.RunAsync(ended.Token);
        try
        {
            while (true)
            {
                var (result, message) = await connection.ReceiveAsync(stopping).ConfigureAwait(false);
                heartbeat.FrameReceived();
                if (result == SocketConnection.Received.Closed)
                {
                    return;
                }

                if (result == SocketConnection.Received.TooBig)
                {
                    ClientLog.MessageTooBig(logger, options.MaxMessageBytes);
                    ResyncAll(ClientResyncReasons.MessageTooBig, null);
                    continue;
                }

                try
                {
                    Handle(message.Span);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    ClientLog.FrameFailed(logger, ex);
                    ResyncAll(ClientResyncReasons.InvalidFrame, null);
                }
            }
        }
        finally
        {
            await ended.CancelAsync().ConfigureAwait(false);
            await sender.ConfigureAwait(false);
        }
    }

    private void Handle(ReadOnlySpan<byte> utf8)
    {
        if (ServerFrameParser.Parse(utf8, out var error) is not { } frame)
        {
            ClientLog.InvalidFrame(logger, error ?? "unreadable", ++_invalidFrames);
            ResyncAll(ClientResyncReasons.InvalidFrame, null);
            return;
        }

        switch (frame.Type)
        {
            case Protocol.FrameTypes.Change:
                OnChange(frame);
                break;
            case Protocol.FrameTypes.Snapshot:
                if (registry.Find(frame.QualifiedTable!) is { } rowsFor)
                {
                    Deliver(rowsFor, new PgSnapshotMessage(rowsFor.Table, frame.Rows!));
                }

                break;
            case Protocol.FrameTypes.SnapshotEnd:
                if (registry.Find(frame.QualifiedTable!) is { } endFor)
                {
                    endFor.LastPosition = Max(endFor.LastPosition, frame.Position);
                    Deliver(endFor, new PgSnapshotEndMessage(endFor.Table, frame.Count, frame.Truncated, frame.Key!, frame.Position));
                }

                break;
            case Protocol.FrameTypes.Subscribed:
                OnSubscribed(frame);
                break;
            case Protocol.FrameTypes.Unsubscribed:
                OnUnsubscribed(frame);
                break;
            case Protocol.FrameTypes.Error:
                OnError(frame);
                break;
            case Protocol.FrameTypes.Resync:
                ResyncAll(frame.Reason ?? "unknown", frame.Missed);
                break;
            default:
                break; // pong (liveness is any frame), a second welcome, or a frame type of a later protocol version
        }
    }

    private void OnChange(ServerFrame frame)
    {
        if (registry.Find(frame.QualifiedTable!) is not { } subscription)
        {
            return;
        }

        if (frame.Position is { } position)
        {
            if (position <= subscription.LastPosition)
            {
                return; // a repeat from a replay, or already in the snapshot
            }

            subscription.LastPosition = position;
        }

        Deliver(subscription, new PgChangeMessage(subscription.Table, frame.Schema!, frame.Table!, frame.Operation, frame.Data, frame.Old, frame.Xid, frame.Seq, frame.Timestamp, frame.Position));
    }

    private void OnSubscribed(ServerFrame frame)
    {
        if (_requests.Take(frame.Id) is not { } request || request.Subscription.Ended)
        {
            return;
        }

        var subscription = request.Subscription;
        _requests.Answered();
        if (request.Since is null && Lossless && !request.Snapshot)
        {
            subscription.LastPosition = Max(subscription.LastPosition, frame.Position);
        }

        if (request.Kind == RequestKind.Reconnect && request.Since is null)
        {
            ClientLog.Resync(logger, ClientResyncReasons.Reconnected, null);
            Deliver(subscription, new PgResyncMessage(subscription.Table, ClientResyncReasons.Reconnected, null));
        }

        subscription.WasLive = true;
        Deliver(subscription, new PgSubscribedMessage(subscription.Table, frame.Position, request.Since is not null, request.Snapshot));
    }

    private void OnUnsubscribed(ServerFrame frame)
    {
        if (frame.Id is not null)
        {
            _requests.Take(frame.Id);
            return;
        }

        foreach (var table in frame.Tables ?? [])
        {
            if (TryFind(table) is { } subscription)
            {
                var reason = frame.Reason ?? "unknown";
                ClientLog.SubscriptionEnded(logger, subscription.Table, reason);
                registry.Remove(subscription);
                subscription.Complete(new PgNotifyException(reason, $"The server ended the subscription to '{subscription.Table}' ({reason})."));
            }
        }
    }

    private void OnError(ServerFrame frame)
    {
        if (frame.Code == Protocol.ErrorCodes.RateLimited)
        {
            ClientLog.RateLimited(logger);
            _requests.RateLimited();
            return;
        }

        if (frame.Code == Protocol.ErrorCodes.SnapshotUnavailable && frame.QualifiedTable is { } table)
        {
            // Sent after the acknowledgment: the subscription stands, but without its rows it cannot be what was asked.
            if (registry.Find(table) is { } noSnapshot)
            {
                Fail(noSnapshot, frame);
            }

            return;
        }

        if (_requests.Take(frame.Id) is not { } failed)
        {
            ClientLog.ServerError(logger, frame.Code, frame.Message);
            return;
        }

        var subscription = failed.Subscription;
        if (failed.Kind == RequestKind.Unsubscribe || subscription.Ended)
        {
            return;
        }

        if (frame.Code == Protocol.ErrorCodes.Unavailable)
        {
            _ = _requests.RetryLaterAsync(failed, _stopping);
        }
        else if (frame.Code == Protocol.ErrorCodes.InvalidPosition && failed.Since is not null)
        {
            subscription.LastPosition = null; // cannot resume here: subscribe afresh, and the app is told to reload
            _requests.Restart(subscription);
        }
        else
        {
            Fail(subscription, frame);
        }
    }

    /// <summary>Ends a subscription the server refused: its enumerator throws the server's code; an unsubscribe follows.</summary>
    private void Fail(ClientSubscription subscription, ServerFrame frame)
    {
        var code = frame.Code ?? "error";
        ClientLog.SubscriptionRefused(logger, subscription.Table, code, frame.Message);
        registry.Remove(subscription);
        subscription.Complete(new PgNotifyException(code, $"The server refused the subscription to '{subscription.Table}': {frame.Message ?? code}"));
        _requests.Unsubscribe(subscription);
    }

    private void ResyncAll(string reason, long? missed)
    {
        ClientLog.Resync(logger, reason, missed);
        foreach (var subscription in registry.All())
        {
            Deliver(subscription, new PgResyncMessage(subscription.Table, reason, missed));
            RequestSnapshot(subscription);
        }
    }

    private void Deliver(ClientSubscription subscription, PgNotifyMessage message)
    {
        if (!subscription.Deliver(message) && !subscription.Ended)
        {
            ClientLog.Overflow(logger, subscription.Table);
        }
    }

    private ClientSubscription? TryFind(string table)
    {
        try
        {
            var (schema, name) = TableNames.Parse(table);
            return registry.Find(TableNames.Qualify(schema, name));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

}
