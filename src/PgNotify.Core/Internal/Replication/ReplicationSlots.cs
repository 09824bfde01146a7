using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// Keeps the replication slots of all instances in check: records when each PgNotify slot was last in use
/// (<c>pgnotify.replication_slot</c>), drops slots unused for longer than
/// <see cref="PgNotifyOptions.ReplicationSlotIdleTimeout"/> (a dead instance's slot must not keep WAL forever), and
/// measures the WAL this instance's slot retains, for health (<see cref="IPgNotifyLoopStatus"/>) and the metric
/// <c>pgnotify.replication.retained_wal</c>. Runs on the replication source's slot timer; read from any thread.
/// </summary>
internal sealed class ReplicationSlots : IPgNotifyLoopStatus
{
    private readonly PgNotifyOptions _options;
    private readonly PgNotifyConnections _connections;
    private readonly ILogger _logger;
    private long _retainedWalBytes = -1;
    private volatile string? _failure;
    private volatile Exception? _lastFault;

    public ReplicationSlots(IOptions<PgNotifyOptions> options, PgNotifyConnections connections, ReplicationSetup setup, IMeterFactory meters, ILogger<PgNotifyListener> logger)
    {
        _options = options.Value;
        _connections = connections;
        _logger = logger;
        SlotName = setup.SlotName;
        var meter = meters.Create(PgNotifyMetrics.MeterName);
        meter.CreateObservableGauge("pgnotify.replication.retained_wal", ObserveRetained, "By",
            "WAL that PostgreSQL keeps for this instance's replication slot (pg_current_wal_lsn() - restart_lsn).");
    }

    public string SlotName { get; }

    /// <summary>WAL bytes this instance's slot retains at the last check, or -1 before the first.</summary>
    public long RetainedWalBytes => Interlocked.Read(ref _retainedWalBytes);

    /// <summary>Set by the source while its replication stream fails.</summary>
    public string? Failure => _failure;

    public Exception? LastFault => _lastFault;

    public void StreamFailed(Exception error)
    {
        _lastFault = error;
        _failure = $"PgNotify's replication stream failed ({error.GetType().Name}: {error.Message}) and is reconnecting: changes wait in slot '{SlotName}' until it streams again.";
    }

    public void StreamRunning() => _failure = null;

    public void AddData(IDictionary<string, object> data)
    {
        data["replication_slot"] = SlotName;
        if (RetainedWalBytes >= 0)
        {
            data["replication_retained_wal_bytes"] = RetainedWalBytes;
        }
    }

    /// <summary>One round: mark slots in use, drop idle ones, measure this slot's retained WAL. Never throws but for cancellation.</summary>
    public async Task CheckAsync(CancellationToken cancellationToken)
    {
        try
        {
            var dropped = await DropIdleAsync(cancellationToken).ConfigureAwait(false);
            foreach (var slot in dropped)
            {
                PgNotifyLog.ReplicationSlotDropped(_logger, slot, _options.ReplicationSlotIdleTimeout);
            }

            await using var command = _connections.Side.CreateCommand(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1");
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SlotName });
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long bytes)
            {
                Interlocked.Exchange(ref _retainedWalBytes, bytes);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            PgNotifyLog.ReplicationSlotCheckFailed(_logger, ex);
        }
    }

    private async Task<List<string>> DropIdleAsync(CancellationToken cancellationToken)
    {
        // Slots in use (and slots never seen before) are stamped now; an inactive PgNotify slot whose stamp is older than
        // the idle timeout is dropped. The database's clock decides, so every instance agrees.
        await using var command = _connections.Side.CreateCommand(
            """
            WITH pg AS (
                SELECT slot_name::text AS slot_name, active FROM pg_replication_slots
                WHERE slot_name LIKE 'pgnotify\_%' AND database = current_database()),
            stamped AS (
                INSERT INTO pgnotify.replication_slot AS r (slot_name, last_active)
                SELECT slot_name, now() FROM pg WHERE active OR slot_name = $1
                UNION ALL
                SELECT slot_name, now() FROM pg WHERE NOT active AND slot_name <> $1
                    AND NOT EXISTS (SELECT 1 FROM pgnotify.replication_slot s WHERE s.slot_name = pg.slot_name)
                ON CONFLICT (slot_name) DO UPDATE SET last_active = excluded.last_active),
            forgotten AS (
                DELETE FROM pgnotify.replication_slot r WHERE NOT EXISTS (SELECT 1 FROM pg WHERE pg.slot_name = r.slot_name))
            SELECT pg.slot_name FROM pg JOIN pgnotify.replication_slot r USING (slot_name)
            WHERE NOT pg.active AND pg.slot_name <> $1 AND r.last_active < now() - $2
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = SlotName });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _options.ReplicationSlotIdleTimeout });
        var idle = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                idle.Add(reader.GetString(0));
            }
        }

        var dropped = new List<string>();
        foreach (var slot in idle)
        {
            try
            {
                await using var drop = _connections.Side.CreateCommand(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active");
                drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
                await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                dropped.Add(slot);
            }
            catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.ObjectInUse or PostgresErrorCodes.UndefinedObject)
            {
                // Its instance came back (or another instance dropped it first): nothing to do.
            }
        }

        return dropped;
    }

    private IEnumerable<Measurement<long>> ObserveRetained() =>
        RetainedWalBytes >= 0 ? [new Measurement<long>(RetainedWalBytes, new KeyValuePair<string, object?>("pgnotify.slot", SlotName))] : [];
}
