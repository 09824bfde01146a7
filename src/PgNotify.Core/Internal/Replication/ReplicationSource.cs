using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace PgNotify.Internal;

/// <summary>
/// The logical replication source (<see cref="PgNotifyOptions.Source"/> = Replication): streams the publication from
/// this instance's slot with pgoutput, decodes each change (<see cref="PgOutputDecoder"/>), adds it to the history and
/// publishes it to the feed, and only then confirms the transaction's end to the slot. A lost connection, a restart of
/// PostgreSQL or of the app costs nothing: the slot sends again everything not confirmed, and what was delivered
/// already (by position) is skipped. Runs on the dispatcher loop; its slot checks on a timer of their own.
/// </summary>
internal sealed class ReplicationSource(
    IOptions<PgNotifyOptions> options,
    NotificationInbox inbox,
    PgChangeFeed feed,
    PgNotifyConnections connections,
    ReplicationSetup setup,
    ReplicationSlots slots,
    ReplicationHistory history,
    PgTypeCatalog catalog,
    LoopSupervisor supervisor,
    PgNotifyMetrics metrics,
    TimeProvider time,
    ILogger<PgNotifyListener> logger) : IChangeSource
{
    private readonly PgNotifyOptions _options = options.Value;
    private readonly Dictionary<PgTableName, string[]> _excluded = options.Value.ExcludedColumnsByTable();

    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>How often an idle stream confirms the end of WAL it was sent (see <see cref="ReplicationConfirmation"/>).</summary>
    internal static readonly TimeSpan IdleConfirmInterval = TimeSpan.FromMilliseconds(500);

    private long _delivered;
    private long _unfilledReported;

    /// <summary>The backend pid of the replication connection (for tests that terminate it), or 0.</summary>
    internal int BackendPid { get; private set; }

    public bool LosesChangesOnReconnect => false;

    public long DeliveredPosition => Volatile.Read(ref _delivered);

    public Task CaughtUp => _caughtUp.Task;

    /// <summary>
    /// The listener reports Listening only once the replication stream runs from a slot: from then on every commit is
    /// kept for this instance, so a client told "subscribed" misses nothing.
    /// </summary>
    public Task OnListeningAsync(CancellationToken cancellationToken) => _caughtUp.Task.WaitAsync(cancellationToken);

    public void OnDispatcherFailed() => feed.PublishGap(metrics, PgChangeGapReason.Unreadable, null, time.GetUtcNow());

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var background = Task.WhenAll(DrainInboxAsync(stop.Token), CheckSlotsAsync(stop.Token));
        try
        {
            var attempt = 0;
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await StreamAsync(() => attempt = 0, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    slots.StreamFailed(ex);
                    var backoff = supervisor.Backoff.Next(attempt++);
                    PgNotifyLog.ReplicationLost(logger, attempt, backoff.TotalMilliseconds, ex);
                    try
                    {
                        await Task.Delay(backoff, time, stoppingToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await background.ConfigureAwait(false);
        }
    }

    private async Task StreamAsync(Action streaming, CancellationToken stoppingToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(_options.ConnectionString)
        {
            Pooling = false,
            Multiplexing = false,
            Enlist = false,
            TcpKeepAlive = true,
            ApplicationName = "PgNotify replication",
            // Values arrive as text in the server's output syntax: PgRowJson reads ISO dates.
            Options = "-c DateStyle=ISO,MDY -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex",
        };
        var connection = new LogicalReplicationConnection(builder.ConnectionString)
        {
            WalReceiverStatusInterval = TimeSpan.FromSeconds(1),
        };
        await using (connection.ConfigureAwait(false))
        {
            await connection.Open(stoppingToken).ConfigureAwait(false);
            BackendPid = connection.ProcessID;
            var slot = await EnsureSlotAsync(connection, stoppingToken).ConfigureAwait(false);
            var (start, nextXid) = await StreamStartAsync(stoppingToken).ConfigureAwait(false);
            history.StartAt(ReplicationPosition.Below(start));
            // Everything below the slot's start is delivered (or was never published), so an acknowledgment before the
            // first change says so too; the slot may move past idle WAL between streams, never back.
            Volatile.Write(ref _delivered, Math.Max(_delivered, ReplicationPosition.Below(start)));
            await catalog.WarmAsync([.. _options.Tables.Select(PgTableName.Parse)], stoppingToken).ConfigureAwait(false);
            var decoder = new PgOutputDecoder(catalog, _excluded, new TransactionIdWidener(nextXid), time);
            var changes = new List<PgChange>();
            var replication = connection.StartReplication(
                slot, new PgOutputReplicationOptions(ReplicationSetup.PublicationName, PgOutputProtocolVersion.V1), stoppingToken);
            var enumerator = replication.GetAsyncEnumerator(stoppingToken);
            await using (enumerator.ConfigureAwait(false))
            {
                var moved = enumerator.MoveNextAsync(); // sends START_REPLICATION
                slots.StreamRunning();
                streaming();
                PgNotifyLog.ReplicationStreaming(logger, setup.SlotName, ReplicationSetup.PublicationName, new NpgsqlLogSequenceNumber(start).ToString());
                _caughtUp.TrySetResult();
                var confirmation = new ReplicationConfirmation(connection, start);
                using var idle = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var confirming = confirmation.RunWhileIdleAsync(IdleConfirmInterval, time, idle.Token);
                try
                {
                    while (await moved.ConfigureAwait(false))
                    {
                        var message = enumerator.Current;
                        supervisor.Turn(LoopSupervisor.DispatcherLoop);
                        confirmation.Handling(message);
                        var confirm = await HandleAsync(decoder, message, changes, stoppingToken).ConfigureAwait(false);
                        confirmation.Handled(message, confirm);
                        supervisor.Progressed(LoopSupervisor.DispatcherLoop);
                        moved = enumerator.MoveNextAsync();
                    }
                }
                finally
                {
                    await idle.CancelAsync().ConfigureAwait(false);
                    await confirming.ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Publishes the changes of one message; returns the transaction's end once all of it is in the feed.</summary>
    private async Task<ulong?> HandleAsync(
        PgOutputDecoder decoder, PgOutputReplicationMessage message, List<PgChange> changes, CancellationToken stoppingToken)
    {
        ulong? confirm;
        try
        {
            confirm = await decoder.DecodeAsync(message, changes, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!IsConnectionError(ex) && !stoppingToken.IsCancellationRequested)
        {
            // This change cannot be converted (nobody foresaw it): it costs this change alone, and consumers are told.
            metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
            PgNotifyLog.ReplicationChangeFailed(logger, new NpgsqlLogSequenceNumber(decoder.CommitLsn).ToString(), ex);
            feed.PublishGap(metrics, PgChangeGapReason.Unreadable, 1, time.GetUtcNow());
            confirm = message is CommitMessage commit ? (ulong)commit.TransactionEndLsn : null;
        }

        foreach (var change in changes)
        {
            Publish(change);
        }

        changes.Clear();
        if (decoder.UnfilledToastValues > _unfilledReported)
        {
            PgNotifyLog.ToastValuesUnfilled(logger, decoder.UnfilledToastValues - _unfilledReported);
            _unfilledReported = decoder.UnfilledToastValues;
        }

        return confirm; // every change of the transaction is in the feed: the slot may now forget it
    }

    private void Publish(PgChange change)
    {
        var position = change.Position!.Value;
        if (position <= DeliveredPosition)
        {
            return; // sent again by the slot after a reconnect: delivered already
        }

        try
        {
            PgNotifyLog.ChangeReceived(logger, change.Operation, change.Table, change.TransactionId, change.Sequence);
            history.Add(change); // first: a consumer that sees it live may read everything below it from the history
            feed.Publish(change);
        }
        catch (Exception ex)
        {
            metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
            PgNotifyLog.DispatchFailed(logger, _options.Channel, ex);
            feed.PublishGap(metrics, PgChangeGapReason.Unreadable, 1, time.GetUtcNow());
        }

        Volatile.Write(ref _delivered, position);
    }

    private async Task<PgOutputReplicationSlot> EnsureSlotAsync(LogicalReplicationConnection connection, CancellationToken cancellationToken)
    {
        await using var command = connections.Side.CreateCommand("SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = setup.SlotName });
        if (!(bool)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!)
        {
            try
            {
                await connection.CreatePgOutputReplicationSlot(
                    setup.SlotName, temporarySlot: false, slotSnapshotInitMode: LogicalSlotSnapshotInitMode.NoExport, cancellationToken: cancellationToken).ConfigureAwait(false);
                PgNotifyLog.ReplicationSlotCreated(logger, setup.SlotName);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.DuplicateObject)
            {
                // Created meanwhile (another process with the same InstanceName): use it.
            }
        }

        return new PgOutputReplicationSlot(setup.SlotName);
    }

    /// <summary>Where the slot starts (its confirmed_flush) and the server's next 64-bit xid (to widen pgoutput's).</summary>
    private async Task<(ulong Start, long NextXid)> StreamStartAsync(CancellationToken cancellationToken)
    {
        await using var command = connections.Side.CreateCommand(
            "SELECT (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1), pg_snapshot_xmax(pg_current_snapshot())::text");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = setup.SlotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var start = reader.IsDBNull(0) ? 0 : (ulong)NpgsqlLogSequenceNumber.Parse(reader.GetString(0));
        return (start, long.Parse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task DrainInboxAsync(CancellationToken cancellationToken)
    {
        // The LISTEN connection still runs (state, health): notifications on the channel carry nothing for this source.
        try
        {
            while (await inbox.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (inbox.Reader.TryRead(out _))
                {
                }

                inbox.TakeDropped();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task CheckSlotsAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var timer = new PeriodicTimer(_options.HealthCheckInterval, time);
            do
            {
                await slots.CheckAsync(cancellationToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static bool IsConnectionError(Exception ex) =>
        ex is NpgsqlException or IOException or System.Net.Sockets.SocketException or TimeoutException or ObjectDisposedException;
}
