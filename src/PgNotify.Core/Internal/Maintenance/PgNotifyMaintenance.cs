using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// A hosted service of its own: every <see cref="PgNotifyOptions.MaintenanceInterval"/> it prunes parked oversized rows
/// past <see cref="PgNotifyOptions.LargePayloadRetention"/> and, with lossless delivery, the change log (never past what
/// was delivered). Runs on its own task, under the loop supervisor.
/// </summary>
internal sealed class PgNotifyMaintenance(
    IOptions<PgNotifyOptions> options,
    PgNotifyConnections connections,
    PgChangeLog changeLog,
    IChangeSource source,
    LoopSupervisor supervisor,
    PgNotifyMetrics metrics,
    TimeProvider time,
    ILogger<PgNotifyListener> logger) : BackgroundService
{
    private readonly PgNotifyOptions _options = options.Value;
    private bool _forbiddenReported;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Run(() => supervisor.SuperviseAsync(LoopSupervisor.MaintenanceLoop, MaintainAsync, null, stoppingToken), CancellationToken.None);

    private async Task MaintainAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.MaintenanceInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            supervisor.Turn(LoopSupervisor.MaintenanceLoop);
            try
            {
                await using var command = connections.Side.CreateCommand(
                    "DELETE FROM pgnotify.large_payload WHERE created_at < now() - $1");
                command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _options.LargePayloadRetention });
                var pruned = await command.ExecuteNonQueryAsync(stoppingToken).ConfigureAwait(false);
                if (_options.LosslessDelivery && _options.Source == PgChangeSourceKind.Notify)
                {
                    pruned += await changeLog.PruneAsync(
                        source.DeliveredPosition, _options.ChangeLogRetention, _options.ChangeLogMaxRows, stoppingToken).ConfigureAwait(false);
                }

                PgNotifyLog.Pruned(logger, pruned);
                supervisor.Progressed(LoopSupervisor.MaintenanceLoop);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege && !stoppingToken.IsCancellationRequested)
            {
                // An app role that may not delete (it does not own PgNotify's objects): the trigger prunes both tables
                // with the retention of pgnotify.settings, so nothing grows without bound. Said once, not every tick;
                // the next tick tries again, so a later GRANT takes effect by itself.
                if (!_forbiddenReported)
                {
                    _forbiddenReported = true;
                    PgNotifyLog.MaintenanceNotPermitted(logger, ex.MessageText);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever else failed (a lost connection), the next tick tries again.
                metrics.ItemFailed(LoopSupervisor.MaintenanceLoop);
                PgNotifyLog.MaintenanceFailed(logger, ex);
            }
        }
    }
}
