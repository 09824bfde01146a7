using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Live delivery: each notification carries its change (or a reference to a parked oversized one). The dispatcher
/// loop parses it, fetches parked rows, drops forged payloads without a gap, reports overflow and reconnects as gaps,
/// and publishes to the feed. Runs on the dispatcher loop only.
/// </summary>
internal sealed class NotificationSource(
    IOptions<PgNotifyOptions> options,
    NotificationInbox inbox,
    PgChangeFeed feed,
    LargePayloadFetcher fetcher,
    RejectedNotifications rejected,
    LoopSupervisor supervisor,
    PgNotifyMetrics metrics,
    TimeProvider time,
    ILogger<PgNotifyListener> logger) : IChangeSource
{
    /// <summary>How often a gap owed to a consumer whose buffer is still full is offered again while nothing arrives.</summary>
    private static readonly TimeSpan GapRetryInterval = TimeSpan.FromMilliseconds(100);

    private readonly OverflowReport _overflow = new(time);
    private bool _warnedLosslessTrigger;

    public bool LosesChangesOnReconnect => true;

    public long DeliveredPosition => 0;

    public Task CaughtUp { get; } = Task.CompletedTask;

    public Task OnListeningAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void OnDispatcherFailed() => feed.PublishGap(metrics, PgChangeGapReason.Unreadable, null, time.GetUtcNow());

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        while (true)
        {
            if (!inbox.Reader.TryRead(out var payload))
            {
                if (!await WaitForInboxAsync().ConfigureAwait(false))
                {
                    return;
                }

                continue;
            }

            supervisor.Turn(LoopSupervisor.DispatcherLoop);
            var now = time.GetUtcNow();
            try
            {
                ReportOverflow(now, flush: false);
                await DispatchOneAsync(payload, now, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Nobody foresaw this one: it costs this notification alone, and consumers are told.
                metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
                PgNotifyLog.DispatchFailed(logger, options.Value.Channel, ex);
                feed.PublishGap(metrics, PgChangeGapReason.Unreadable, 1, now);
                continue;
            }

            supervisor.Progressed(LoopSupervisor.DispatcherLoop);
        }
    }

    /// <summary>Handles one notification: a change, a reference to a parked one, or a reconnect marker.</summary>
    private async Task DispatchOneAsync(string? payload, DateTimeOffset now, CancellationToken stoppingToken)
    {
        if (payload is null)
        {
            feed.PublishGap(metrics, PgChangeGapReason.ListenerReconnected, null, now);
            return;
        }

        PgChangePayload parsed;
        try
        {
            parsed = PgChangePayload.Parse(payload, now);
        }
        catch (FormatException ex)
        {
            // Anyone who can connect can NOTIFY: a payload the trigger did not write is dropped, not turned into a gap
            // (a forger must not make every socket resync).
            rejected.Reject("malformed", ex.Message);
            return;
        }

        if (parsed.IsWakeUp)
        {
            if (!_warnedLosslessTrigger)
            {
                _warnedLosslessTrigger = true;
                PgNotifyLog.LosslessTriggerWhileLive(logger, options.Value.Channel);
            }

            return;
        }

        var change = parsed.Change;
        if (parsed.LargePayloadId is { } id)
        {
            var fetched = await fetcher.FetchAsync(id, parsed.Header!, now, stoppingToken).ConfigureAwait(false);
            if (fetched.Gap)
            {
                feed.PublishGap(metrics, PgChangeGapReason.Unreadable, 1, now);
                return;
            }

            change = fetched.Change;
            if (change is null)
            {
                return; // refused: logged and counted
            }
        }

        PgNotifyLog.ChangeReceived(logger, change!.Operation, change.Table, change.TransactionId, change.Sequence);
        feed.Publish(change);
    }

    /// <summary>
    /// Waits for the next notification. While dropped notifications are waiting to be reported, it waits at most until
    /// their report is due, then reports them: a drop is always followed by a gap, even if nothing else arrives.
    /// </summary>
    /// <returns><see langword="false"/> when the inbox is completed (the listener stopped).</returns>
    private async Task<bool> WaitForInboxAsync()
    {
        var wait = inbox.Reader.WaitToReadAsync(CancellationToken.None).AsTask();
        // Nothing to dispatch: a consumer owed a gap (its buffer overflowed on the last burst) gets it now, or, while its
        // buffer is still full, at the next retry.
        var gapsOwed = feed.FlushPendingGaps();
        var overflowOwed = _overflow.Owed(inbox.HasDropped);
        if (!gapsOwed && !overflowOwed)
        {
            return await wait.ConfigureAwait(false);
        }

        var overflowDue = overflowOwed ? _overflow.DueIn() : TimeSpan.MaxValue;
        var due = gapsOwed && GapRetryInterval < overflowDue ? GapRetryInterval : overflowDue;
        if (due > TimeSpan.Zero && await Task.WhenAny(wait, Task.Delay(due, time)).ConfigureAwait(false) == wait)
        {
            return await wait.ConfigureAwait(false);
        }

        if (due == overflowDue)
        {
            ReportOverflow(time.GetUtcNow(), flush: true);
        }

        return true; // the caller comes back here, to retry what is still owed
    }

    private void ReportOverflow(DateTimeOffset now, bool flush)
    {
        if (_overflow.Add(inbox.TakeDropped(), flush, out var count))
        {
            PgNotifyLog.InboxOverflow(logger, count);
            feed.PublishGap(metrics, PgChangeGapReason.ListenerOverflow, count, now);
        }
    }
}
