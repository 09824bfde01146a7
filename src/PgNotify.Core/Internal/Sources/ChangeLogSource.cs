using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Lossless delivery: notifications (and reconnects, and a timer) only wake the reader of <c>pgnotify.change_log</c>,
/// which hands out every committed change once, in position order, whatever happened to the LISTEN connection. Runs on
/// the dispatcher loop; <see cref="OnListeningAsync"/> on the connect loop.
/// </summary>
internal sealed class ChangeLogSource(
    IOptions<PgNotifyOptions> options,
    NotificationInbox inbox,
    PgChangeFeed feed,
    PgNotifyConnections connections,
    LoopSupervisor supervisor,
    PgNotifyMetrics metrics,
    TimeProvider time,
    ILogger<PgNotifyListener> logger) : IChangeSource
{
    private readonly PgNotifyOptions _options = options.Value;
    private readonly ChangeLogReader _reader = new(maxHoles: options.Value.MaxChangeLogHoles);
    private readonly TaskCompletionSource _caughtUp = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _deliveredPosition;
    private bool _warnedLiveTrigger;

    public bool LosesChangesOnReconnect => false;

    public long DeliveredPosition => Volatile.Read(ref _deliveredPosition);

    public Task CaughtUp => _caughtUp.Task;

    /// <summary>Changes read from the log and held back until the positions below them settle (for tests and diagnostics).</summary>
    internal int PendingCount => _reader.PendingCount;

    /// <summary>The log reader's starting point is fixed before anyone is told changes flow.</summary>
    public Task OnListeningAsync(CancellationToken cancellationToken) => _reader.EnsureStartedAsync(connections.Side, cancellationToken);

    public void OnDispatcherFailed() => feed.PublishGap(metrics, PgChangeGapReason.Unreadable, null, time.GetUtcNow());

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var attempt = 0;
        var first = true;
        while (true)
        {
            // Wake on a notification or a reconnect marker, or after the poll interval (holes settle, missed wake-ups).
            // The first read is at once: what the log held at startup must be settled before clients resume.
            if (!first && !inbox.Reader.TryPeek(out _))
            {
                var wait = inbox.Reader.WaitToReadAsync(stoppingToken).AsTask();
                var delay = _reader.HoleCount > 0 ? TimeSpan.FromMilliseconds(50) : _options.ChangeLogPollInterval;
                if (await Task.WhenAny(wait, Task.Delay(delay, time, stoppingToken)).ConfigureAwait(false) == wait && !await wait.ConfigureAwait(false))
                {
                    return; // the inbox completed: the listener stopped
                }
            }

            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            supervisor.Turn(LoopSupervisor.DispatcherLoop);
            feed.FlushPendingGaps(); // a consumer owed a gap gets it even when no further change comes (retried each poll)
            DrainWakeUps();
            try
            {
                await ReadUntilDrainedAsync(stoppingToken).ConfigureAwait(false);
                first = false;
                attempt = 0;
                supervisor.Progressed(LoopSupervisor.DispatcherLoop);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Transient or not, the reader must keep going: its position state survives, so nothing is lost by retrying.
                var backoff = supervisor.Backoff.Next(attempt++);
                PgNotifyLog.ChangeLogReadFailed(logger, backoff.TotalMilliseconds, ex);
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

    private void DrainWakeUps()
    {
        while (inbox.Reader.TryRead(out var wake))
        {
            if (wake is not null && !wake.StartsWith("{\"v\":1,\"wake\":", StringComparison.Ordinal) && !_warnedLiveTrigger)
            {
                // A full payload: some table's trigger is in live mode, and its changes are not in the log.
                _warnedLiveTrigger = true;
                PgNotifyLog.LiveTriggerWhileLossless(logger, _options.Channel);
            }
        }

        inbox.TakeDropped(); // a dropped wake-up costs nothing: the log holds the change
    }

    private async Task ReadUntilDrainedAsync(CancellationToken stoppingToken)
    {
        ChangeLogBatch batch;
        do
        {
            batch = await _reader.ReadAsync(connections.Side, time.GetUtcNow(), stoppingToken).ConfigureAwait(false);
            PgNotifyLog.ChangeLogRead(logger, batch.Changes.Count, _reader.DeliveredThrough, _reader.PendingCount, _reader.HoleCount);
            foreach (var (position, reason) in batch.Unreadable)
            {
                metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
                PgNotifyLog.ChangeLogRowUnreadable(logger, position, reason);
            }

            if (batch.AbandonedHoles > 0)
            {
                PgNotifyLog.ChangeLogHolesOverflow(logger, _options.MaxChangeLogHoles, batch.AbandonedHoles);
            }

            if (batch.Gap is { } gap)
            {
                if (batch.PrunedPastReader)
                {
                    PgNotifyLog.ChangeLogPrunedPastReader(logger);
                }

                metrics.Gap(gap.Reason);
                feed.Publish(gap);
            }

            foreach (var change in batch.Changes)
            {
                try
                {
                    PgNotifyLog.ChangeReceived(logger, change.Operation, change.Table, change.TransactionId, change.Sequence);
                    feed.Publish(change);
                }
                catch (Exception ex)
                {
                    // Nobody foresaw this one: it costs this change alone, and consumers are told.
                    metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
                    PgNotifyLog.DispatchFailed(logger, _options.Channel, ex);
                    feed.PublishGap(metrics, PgChangeGapReason.Unreadable, 1, time.GetUtcNow());
                }
            }

            Volatile.Write(ref _deliveredPosition, _reader.DeliveredThrough);
            if (_reader.CaughtUp)
            {
                _caughtUp.TrySetResult();
            }
        }
        while (batch.MoreAvailable);
    }
}
