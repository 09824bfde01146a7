namespace PgNotify.WebSockets.Internal;

/// <summary>The socket's requests: subscribe, unsubscribe, ping (docs/protocol.md).</summary>
internal sealed partial class SocketSession
{
    private async Task HandleMessageAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        if (ClientRequest.Parse(message, out var error) is not { } request)
        {
            EnqueueError(error!.Id, error.Code, error.Message);
            return;
        }

        switch (request.Type)
        {
            case ClientRequestType.Ping:
                EnqueueControl(Frames.Pong(request.Id), Protocol.FrameTypes.Pong);
                break;
            case ClientRequestType.Unsubscribe:
                Unsubscribe(request.Id, request.Tables);
                break;
            default:
                if (ParseSince(request.Id, request.Since, out var since))
                {
                    await SubscribeAsync(request.Id, request.Tables, request.Operations, request.Filter, since, cancellationToken).ConfigureAwait(false);
                }

                break;
        }
    }

    private bool ParseSince(RequestId id, string? text, out long? since)
    {
        since = null;
        if (text is null)
        {
            return true;
        }

        if (!_source.Lossless)
        {
            EnqueueError(id, Protocol.ErrorCodes.InvalidPosition, "\"since\" needs lossless delivery, which this server does not have turned on.");
            return false;
        }

        if (!long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            EnqueueError(id, Protocol.ErrorCodes.InvalidPosition, "\"since\" must be a position: a whole number of zero or more.");
            return false;
        }

        since = value;
        return true;
    }

    private async Task SubscribeAsync(RequestId id, IReadOnlyList<string> names, IReadOnlyList<PgChangeOperation> operations, RowFilter? filter, long? since, CancellationToken cancellationToken)
    {
        var tables = new List<PgTableName>();
        foreach (var name in names)
        {
            if (!PgTableName.TryParse(name, out var table) || !_router.IsExposed(table))
            {
                EnqueueError(id, Protocol.ErrorCodes.UnknownTable, $"Table '{(name.Length > 64 ? name[..64] + "…" : name)}' is not available.");
                return;
            }

            if (!tables.Contains(table))
            {
                tables.Add(table);
            }
        }

        var added = tables.Count(t => !_subscriptions.ContainsKey(t));
        if (_subscriptions.Count + added > _options.MaxSubscriptionsPerSocket)
        {
            EnqueueError(id, Protocol.ErrorCodes.TooManySubscriptions, $"A socket may subscribe to at most {_options.MaxSubscriptionsPerSocket} tables.");
            return;
        }

        if (_options.AuthorizeSubscription is { } authorize)
        {
            foreach (var table in tables)
            {
                bool allowed;
                try
                {
                    allowed = await authorize(new PgSubscriptionAuthorizationContext(HttpContext, table, operations)).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.SubscriptionHookFailed(_logger, Id, table, ex);
                    allowed = false;
                }

                if (!allowed)
                {
                    EnqueueError(id, Protocol.ErrorCodes.Forbidden, $"Subscribing to '{table}' is not allowed.");
                    return;
                }
            }
        }

        var subscriptions = tables.Select(t => new Subscription(t, operations, filter)).ToList();
        foreach (var subscription in subscriptions)
        {
            _subscriptions[subscription.Table] = subscription;
        }

        if (since is not null)
        {
            _replay.Begin();
        }

        _router.Subscribe(this, subscriptions);
        _metrics.SubscriptionsChanged(added);

        // Acknowledge only once changes flow: the listener must be listening (it may be reconnecting right now), and
        // with lossless delivery the log must be settled up to where it stood when the listener started (right after a
        // restart), so that the head position in the answer can be resumed from.
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.SubscribeTimeout);
            await _source.WaitUntilListeningAsync(timeout.Token).ConfigureAwait(false);
            if (_source.Lossless)
            {
                await _source.WaitUntilCaughtUpAsync(timeout.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Unsubscribe(RequestId.None, tables, acknowledge: false);
            EndReplay(long.MaxValue, dropBuffered: true, subscriptions);
            EnqueueError(id, Protocol.ErrorCodes.Unavailable, "The server is not connected to the database right now; try again.");
            return;
        }

        // The head position (lossless delivery): every change above it reaches this socket (live, or through the
        // replay buffer while resuming); those at or below it were handed to the fan-out before the acknowledgment.
        // For a resume it is also where the replay from the log ends.
        long? head = _source.Lossless ? _router.HeadPosition : null;
        EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Subscribed, id, tables, position: head), Protocol.FrameTypes.Subscribed);
        if (since is { } resumeAfter)
        {
            await ReplayAsync(resumeAfter, head!.Value, subscriptions, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Sends what the client missed after <paramref name="after"/> from the change log, then the live changes that
    /// arrived meanwhile, with no gap and no duplicate at the switchover.
    /// </summary>
    private async Task ReplayAsync(long after, long through, List<Subscription> subscriptions, CancellationToken cancellationToken)
    {
        // Everything at or below `through` has already been handed to the fan-out (so it is in the log, settled);
        // everything above it is routed into the replay buffer.
        foreach (var subscription in subscriptions)
        {
            // The client has everything through `after`; while the replay runs, live changes wait in the buffer.
            subscription.ResumedThrough = after;
        }

        if (after < await _source.GetPrunedThroughAsync(cancellationToken).ConfigureAwait(false))
        {
            EndReplay(through, dropBuffered: false, subscriptions);
            EnqueueResync(Protocol.ResyncReasons.PositionExpired, null);
            return;
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(4096);
        var byTable = subscriptions.ToDictionary(s => s.Table);
        await foreach (var change in _source.ReadAsync(after, through, byTable.Keys, cancellationToken).ConfigureAwait(false))
        {
            if (!byTable.TryGetValue(change.Table, out var subscription) || !subscription.Matches(change))
            {
                continue;
            }

            PgChange? oldRow = null;
            var access = AuthorizeChange(change, ref oldRow);
            if (access == ChangeAccess.Denied)
            {
                continue;
            }

            // Pace the replay to the client: never more than half the send queue at once.
            while (_outbox.PendingChanges > _options.SendQueueCapacity / 2 || _outbox.PendingBytes > _options.SendQueueMaxBytes / 2)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(5), _time, cancellationToken).ConfigureAwait(false);
            }

            EnqueueLive(Frames.Change(change, buffer, includeOld: access == ChangeAccess.Full), change);
        }

        EndReplay(through, dropBuffered: false, subscriptions);
    }

    private void EndReplay(long through, bool dropBuffered, IReadOnlyCollection<Subscription> resumed)
    {
        var overflow = _replay.End(held =>
        {
            // From now on the router may still bring changes the replay sent (it can lag behind the log reader):
            // the resumed tables skip everything through `through`. Other tables of the socket are not affected.
            var resumedTables = new HashSet<PgTableName>();
            foreach (var subscription in resumed)
            {
                subscription.ResumedThrough = Math.Max(subscription.ResumedThrough, through);
                resumedTables.Add(subscription.Table);
            }

            if (!dropBuffered)
            {
                foreach (var (frame, change) in held)
                {
                    if (!resumedTables.Contains(change.Table) || change.Position is not { } position || position > through)
                    {
                        EnqueueLive(frame, change);
                    }
                }
            }
        });

        if (overflow)
        {
            EnqueueResync(Protocol.ResyncReasons.SlowConsumer, null);
        }
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
        var removed = tables.Where(t => _subscriptions.Remove(t)).ToList();
        _router.Unsubscribe(this, removed);
        _metrics.SubscriptionsChanged(-removed.Count);
        if (acknowledge)
        {
            EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Unsubscribed, id, tables), Protocol.FrameTypes.Unsubscribed);
        }
    }
}
