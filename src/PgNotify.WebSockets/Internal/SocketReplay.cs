using System.Buffers;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One socket's resume: replays what the client missed from the change log, while the live changes routed meanwhile
/// wait in a <see cref="ReplayBuffer"/>, then releases them, with no gap and no duplicate at the switchover. The
/// replay runs on the socket's request handling; <see cref="TryHold"/> is called by the fan-out thread.
/// </summary>
internal sealed class SocketReplay(SocketSession session)
{
    /// <summary>Made at the first resume: most sockets never resume, and an idle socket should hold as little as possible.</summary>
    private ReplayBuffer? _buffer;

    /// <summary>From now on, live changes wait until <see cref="End"/>. Called on the request handling only.</summary>
    public void Begin()
    {
        if (_buffer is not { } buffer)
        {
            buffer = new ReplayBuffer(session.Options.SendQueueCapacity * 10, session.Options.SendQueueMaxBytes * 10L);
            Volatile.Write(ref _buffer, buffer); // published whole to the fan-out thread's TryHold
        }

        buffer.Begin();
    }

    /// <summary>Holds a live change while a replay runs.</summary>
    /// <returns>False when no replay runs: the caller queues the change itself.</returns>
    public bool TryHold(byte[] frame, PgChange change) => Volatile.Read(ref _buffer) is { } buffer && buffer.TryHold(frame, change);

    /// <summary>
    /// Sends what the client missed after <paramref name="after"/> from the change log, then the live changes that
    /// arrived meanwhile, with no gap and no duplicate at the switchover.
    /// </summary>
    public async Task ReplayAsync(long after, long through, List<Subscription> subscriptions, CancellationToken cancellationToken)
    {
        // Everything at or below `through` has already been handed to the fan-out (so it is in the log, settled);
        // everything above it is routed into the replay buffer.
        foreach (var subscription in subscriptions)
        {
            // The client has everything through `after`; while the replay runs, live changes wait in the buffer.
            subscription.ResumedThrough = after;
        }

        if (after < await session.Source.GetPrunedThroughAsync(cancellationToken).ConfigureAwait(false))
        {
            End(through, dropBuffered: false, subscriptions);
            session.EnqueueResync(Protocol.ResyncReasons.PositionExpired, null);
            return;
        }

        var buffer = new ArrayBufferWriter<byte>(4096);
        var byTable = subscriptions.ToDictionary(s => s.Table);
        await foreach (var change in session.Source.ReadAsync(after, through, byTable.Keys, cancellationToken).ConfigureAwait(false))
        {
            if (!byTable.TryGetValue(change.Table, out var subscription) || !subscription.Matches(change))
            {
                continue;
            }

            PgChange? oldRow = null;
            var access = session.Authorization.AuthorizeChange(change, ref oldRow);
            if (access == ChangeAccess.Denied)
            {
                continue;
            }

            // Pace the replay to the client: never more than half the send queue at once.
            while (session.Outbox.PendingChanges > session.Options.SendQueueCapacity / 2 || session.Outbox.PendingBytes > session.Options.SendQueueMaxBytes / 2)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), session.Time, cancellationToken).ConfigureAwait(false);
            }

            session.EnqueueLive(Frames.Change(change, buffer, includeOld: access == ChangeAccess.Full), change);
        }

        End(through, dropBuffered: false, subscriptions);
    }

    /// <summary>
    /// Ends the replay: the resumed tables skip live changes through <paramref name="through"/> from now on, and the
    /// held changes go out (unless <paramref name="dropBuffered"/>); a buffer that overflowed costs a resync.
    /// </summary>
    public void End(long through, bool dropBuffered, IReadOnlyCollection<Subscription> resumed)
    {
        var overflow = _buffer is { } buffer ? buffer.End(Release) : ReleaseNothing();
        if (overflow)
        {
            session.EnqueueResync(Protocol.ResyncReasons.SlowConsumer, null);
        }

        bool ReleaseNothing()
        {
            Release([]);
            return false;
        }

        void Release(IReadOnlyList<(byte[] Frame, PgChange Change)> held)
        {
            // From now on the router may still bring changes the replay sent (it can lag behind the log reader):
            // the resumed tables skip everything through `through`, and everything through the client's own position,
            // which is above `through` when this instance lags behind the one the client came from. A held change is
            // judged the same way (Subscription.Resumed). Other tables of the socket are not affected.
            var byTable = new Dictionary<PgTableName, Subscription>();
            foreach (var subscription in resumed)
            {
                subscription.ResumedThrough = Math.Max(subscription.ResumedThrough, through);
                byTable[subscription.Table] = subscription;
            }

            if (!dropBuffered)
            {
                foreach (var (frame, change) in held)
                {
                    if (!byTable.TryGetValue(change.Table, out var subscription) || !subscription.Resumed(change))
                    {
                        session.EnqueueLive(frame, change);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Ends the hold of a snapshot: the held changes go out, in order, except those already in the snapshot rows of
    /// their table (<see cref="Subscription.InSnapshot"/>); a buffer that overflowed costs a resync.
    /// </summary>
    public void EndSnapshot(IReadOnlyCollection<Subscription> snapshotted)
    {
        var byTable = snapshotted.ToDictionary(s => s.Table);
        var overflow = _buffer is { } buffer && buffer.End(held =>
        {
            foreach (var (frame, change) in held)
            {
                if (!byTable.TryGetValue(change.Table, out var subscription) || !subscription.InSnapshot(change))
                {
                    session.EnqueueLive(frame, change);
                }
            }
        });

        if (overflow)
        {
            session.EnqueueResync(Protocol.ResyncReasons.SlowConsumer, null);
        }
    }
}
