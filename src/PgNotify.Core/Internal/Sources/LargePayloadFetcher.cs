using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// Reads a row too large for NOTIFY, which the trigger parked in <c>pgnotify.large_payload</c>, on the side data
/// source (never the listening connection). Runs on the dispatcher loop.
/// </summary>
internal sealed class LargePayloadFetcher(
    IOptions<PgNotifyOptions> options,
    PgNotifyConnections connections,
    PgNotifyMetrics metrics,
    TimeProvider time,
    LoopSupervisor supervisor,
    ListenerSetup setup,
    RejectedNotifications rejected,
    ILogger<PgNotifyListener> logger)
{
    /// <summary>How many delivered <c>pgnotify.large_payload</c> ids are remembered (within LargePayloadRetention) to refuse a replayed reference.</summary>
    internal const int MaxRememberedRefs = 100_000;

    private readonly RecentIds _fetchedRefs = new(options.Value.LargePayloadRetention, MaxRememberedRefs);

    /// <summary>
    /// Reads a parked oversized row. Refused (no gap) when the reference is one already delivered or the row does not
    /// fit the notification's header: a replayed or forged reference. A gap when the row is gone or cannot be read;
    /// transient errors are retried.
    /// </summary>
    public async Task<(PgChange? Change, bool Gap)> FetchAsync(long id, PgChange header, DateTimeOffset receivedAt, CancellationToken stoppingToken)
    {
        if (_fetchedRefs.Contains(id, receivedAt))
        {
            rejected.Reject("ref_replayed", $"it references oversized change {id}, which was already delivered.");
            return (null, false);
        }

        for (var attempt = 0; ; attempt++)
        {
            string? payload;
            long? oldest;
            try
            {
                // With the row, the oldest id still parked: a row missing below it was pruned before it was read (a
                // gap); a row missing at or above it was never written (a forged reference: dropped, no gap).
                await using var command = connections.Side.CreateCommand(
                    "SELECT (SELECT payload FROM pgnotify.large_payload WHERE id = $1), (SELECT min(id) FROM pgnotify.large_payload)");
                command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
                await using var reader = await command.ExecuteReaderAsync(stoppingToken).ConfigureAwait(false);
                await reader.ReadAsync(stoppingToken).ConfigureAwait(false);
                payload = reader.IsDBNull(0) ? null : reader.GetString(0);
                oldest = reader.IsDBNull(1) ? null : reader.GetInt64(1);
            }
            catch (Exception ex) when (ListenerSetup.IsTransient(ex) && !stoppingToken.IsCancellationRequested)
            {
                var delay = supervisor.Backoff.Next(attempt);
                PgNotifyLog.LargePayloadFetchFailed(logger, id, delay.TotalMilliseconds, ex);
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                continue;
            }
            catch (PostgresException ex)
            {
                // Not transient (typically 42501: the role may not read pgnotify.large_payload): this change is lost,
                // the next ones are not. Health says how to fix it.
                var fix = ex.SqlState == PostgresErrorCodes.InsufficientPrivilege
                    ? SetupCheck.LargePayloadGrant(setup.RoleName())
                    : $"PgNotify cannot read pgnotify.large_payload ({ex.SqlState}: {ex.MessageText}): run the current sql/install.sql as the owner of the pgnotify schema.";
                supervisor.Status.SetProblem(ListenerSetup.LargePayloadProblem, fix);
                metrics.ItemFailed(LoopSupervisor.DispatcherLoop);
                PgNotifyLog.LargePayloadUnreadable(logger, id, fix, ex);
                return (null, true);
            }

            supervisor.Status.SetProblem(ListenerSetup.LargePayloadProblem, null);
            return Check(id, header, receivedAt, payload, oldest);
        }
    }

    private (PgChange? Change, bool Gap) Check(long id, PgChange header, DateTimeOffset receivedAt, string? payload, long? oldest)
    {
        if (payload is null && oldest is { } min && id < min)
        {
            PgNotifyLog.LargePayloadMissing(logger, id);
            return (null, true);
        }

        if (payload is null)
        {
            rejected.Reject("ref_missing", $"it references oversized change {id}, which was never parked (or was deleted by hand).");
            return (null, false);
        }

        PgChange? change;
        try
        {
            change = PgChangePayload.Parse(payload, receivedAt).Change;
        }
        catch (FormatException ex)
        {
            rejected.Reject("malformed", $"oversized change {id}: {ex.Message}");
            return (null, false);
        }

        if (change is null || change.Table != header.Table || change.Operation != header.Operation
            || change.TransactionId != header.TransactionId || change.Sequence != header.Sequence)
        {
            rejected.Reject("ref_mismatch", $"oversized change {id} is not the change the notification describes ({header.Operation} on {header.Table}, xid {header.TransactionId}, #{header.Sequence}).");
            return (null, false);
        }

        _fetchedRefs.Add(id, receivedAt);
        return (change, false);
    }
}
