using Microsoft.Extensions.Logging;
using Npgsql;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One socket's snapshots (<c>subscribe</c> with <c>"snapshot": true</c>, docs/protocol.md): the tables' current rows
/// read in one PostgreSQL snapshot, sent as <c>snapshot</c> frames and a <c>snapshot_end</c> per table, then the live
/// changes held meanwhile, without those the snapshot already holds. Runs on the socket's request handling; the fan-out
/// only ever holds changes for it (<see cref="SocketReplay"/>), it never waits on it.
/// </summary>
/// <remarks>
/// Why nothing is lost or doubled: the subscription is registered (and live changes held) before the snapshot is
/// taken, so every change committed after the snapshot reaches this socket. Every change carries its transaction id;
/// one the snapshot includes is already in the rows and is dropped, now and for as long as the subscription lasts
/// (<see cref="Subscription.InSnapshot"/>); every other one is sent after <c>snapshot_end</c>, in order.
/// </remarks>
internal sealed class SocketSnapshot(
    SocketSession session,
    Outbox outbox,
    ChangeSource source,
    SocketAuthorization authorization,
    SocketReplay replay,
    PgChangeWebSocketOptions options,
    WebSocketMetrics metrics,
    TimeProvider time,
    ILogger logger)
{
    /// <summary>
    /// Sends the snapshot of each subscription's table, then ends the hold that <see cref="SocketReplay.Begin"/> started
    /// before the subscriptions were registered.
    /// </summary>
    /// <param name="id">The request's id, echoed in every frame.</param>
    /// <param name="subscriptions">The request's subscriptions, registered and held.</param>
    /// <param name="limit">The client's <c>limit</c>, if any.</param>
    /// <param name="position">The head position of the acknowledgment (lossless delivery).</param>
    /// <param name="cancellationToken">The socket's end.</param>
    public async Task SendAsync(RequestId id, IReadOnlyList<Subscription> subscriptions, long? limit, long? position, CancellationToken cancellationToken)
    {
        var max = (int)Math.Min(limit ?? long.MaxValue, options.MaxSnapshotRows);
        try
        {
            PgTableSnapshot snapshot;
            try
            {
                snapshot = await source.BeginSnapshotAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException or FormatException)
            {
                Unavailable(id, subscriptions, "The database could not take a snapshot right now; subscribe again with \"snapshot\": true to retry.", ex);
                return;
            }

            await using (snapshot.ConfigureAwait(false))
            {
                using var deadline = new CancellationTokenSource(options.SnapshotTimeout, time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                for (var i = 0; i < subscriptions.Count; i++)
                {
                    var subscription = subscriptions[i];
                    try
                    {
                        var (count, truncated, key) = await SendTableAsync(id, snapshot, subscription, max, linked.Token).ConfigureAwait(false);
                        subscription.Snapshot = snapshot.Visibility;
                        session.EnqueueControl(Frames.SnapshotEnd(id, subscription.Table, count, truncated, key, position), Protocol.FrameTypes.SnapshotEnd);
                        metrics.SnapshotSent(count);
                    }
                    catch (PgSnapshotUnavailableException ex)
                    {
                        Unavailable(id, [subscription], ex.Message, null);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        SocketSession.Log.SnapshotTimedOut(logger, session.Id, subscription.Table, options.SnapshotTimeout);
                        Unavailable(id, subscriptions.Skip(i), $"The snapshot took longer than {options.SnapshotTimeout.TotalSeconds:0.#} s (the client read too slowly, or the database was busy); subscribe again with \"snapshot\": true to retry.", null, timedOut: true);
                        return;
                    }
                    catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException or FormatException)
                    {
                        // The transaction is unusable after a database error: this table and the rest go without.
                        Unavailable(id, subscriptions.Skip(i), "The database failed while reading the snapshot; subscribe again with \"snapshot\": true to retry.", ex);
                        return;
                    }
                }
            }
        }
        finally
        {
            // The held changes go out now, after the snapshot frames, minus those the snapshot rows already hold.
            replay.EndSnapshot(subscriptions);
        }
    }

    private async Task<(long Count, bool Truncated, IReadOnlyList<string> Key)> SendTableAsync(
        RequestId id, PgTableSnapshot snapshot, Subscription subscription, int max, CancellationToken cancellationToken)
    {
        var table = subscription.Table;
        var key = await snapshot.GetKeyAsync(table, cancellationToken).ConfigureAwait(false);
        var frames = new SnapshotFrameBuilder(id, table);
        var filter = subscription.Filter;
        long count = 0;
        var truncated = false;
        await foreach (var row in snapshot.ReadRowsAsync(table, filter?.ToRowConditions(), cancellationToken).ConfigureAwait(false))
        {
            // The SQL already filtered; the same filter in memory makes the rows exactly what change frames would pass.
            if ((filter is not null && !filter.MatchesRow(row)) || !Authorized(table, row))
            {
                continue;
            }

            if (count == max)
            {
                truncated = true;
                break;
            }

            count++;
            if (frames.Add(row) is { } frame)
            {
                await EnqueueAsync(frame, cancellationToken).ConfigureAwait(false);
            }
        }

        if (frames.Flush() is { } last)
        {
            await EnqueueAsync(last, cancellationToken).ConfigureAwait(false);
        }

        return (count, truncated, key);
    }

    /// <summary>A snapshot row goes to the app's <c>AuthorizeChange</c> as an INSERT of that row (transaction id 0).</summary>
    private bool Authorized(PgTableName table, System.Text.Json.JsonElement row)
    {
        var asInsert = new PgChange(table, PgChangeOperation.Insert, row, null, 0, 0, null, null, time.GetUtcNow());
        PgChange? oldRow = null;
        return authorization.AuthorizeChange(asInsert, ref oldRow) != ChangeAccess.Denied;
    }

    /// <summary>Queues a snapshot frame, paced to the client: never more than half its send queue at once.</summary>
    private async Task EnqueueAsync(byte[] frame, CancellationToken cancellationToken)
    {
        while (outbox.PendingChanges > 0
               && (outbox.PendingChanges > options.SendQueueCapacity / 2 || outbox.PendingBytes + frame.Length > options.SendQueueMaxBytes / 2))
        {
            await Task.Delay(TimeSpan.FromMilliseconds(5), time, cancellationToken).ConfigureAwait(false);
        }

        outbox.EnqueueChange(frame, null, startWriting: true, Protocol.FrameTypes.Snapshot);
    }

    private void Unavailable(RequestId id, IEnumerable<Subscription> subscriptions, string message, Exception? exception, bool timedOut = false)
    {
        foreach (var subscription in subscriptions)
        {
            if (exception is not null)
            {
                SocketSession.Log.SnapshotFailed(logger, session.Id, subscription.Table, exception);
            }
            else
            {
                SocketSession.Log.SnapshotUnavailable(logger, session.Id, subscription.Table, message);
            }

            metrics.SnapshotUnavailable(exception is not null ? "failed" : timedOut ? "timed_out" : "unavailable");
            session.EnqueueControl(Frames.Error(id, Protocol.ErrorCodes.SnapshotUnavailable, message, subscription.Table), Protocol.FrameTypes.Error);
        }
    }
}
