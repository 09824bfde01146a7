using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>
/// A test database for the replication source: logical slots belong to a database and keep WAL, and PostgreSQL refuses
/// to drop a database that still has one, so every slot of this database is dropped when the class is done.
/// </summary>
public class ReplicationFixture : PostgresFixture
{
    /// <summary>An instance name unique to one test host (slot names are cluster-wide).</summary>
    public static string NewInstance() => "test_" + Guid.NewGuid().ToString("N")[..12];

    public static void UseReplication(PgNotifyOptions options, string instance)
    {
        options.Source = PgChangeSourceKind.Replication;
        options.InstanceName = instance;
        options.HealthCheckInterval = TimeSpan.FromSeconds(1);
    }

    /// <summary>Terminates the walsender serving <paramref name="slot"/> (as production loses it), if one runs.</summary>
    public Task<long> TerminateWalSenderAsync(string slot) => ScalarAsync<long>(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL) t", slot);

    public override async Task DisposeAsync()
    {
        try
        {
            await using var admin = new NpgsqlConnection(Server.AdminConnectionString);
            await admin.OpenAsync();
            for (var attempt = 0; attempt < 50; attempt++)
            {
                await using var drop = new NpgsqlCommand(
                    """
                    SELECT count(*) FROM (
                        SELECT CASE WHEN active THEN pg_terminate_backend(active_pid)::int ELSE (pg_drop_replication_slot(slot_name) IS NULL)::int END
                        FROM pg_replication_slots WHERE database = $1) t
                    """, admin);
                drop.Parameters.AddWithValue(DatabaseName);
                if ((long)(await drop.ExecuteScalarAsync())! == 0)
                {
                    break;
                }

                await Task.Delay(100); // a terminated walsender releases its slot asynchronously; polled, not asserted
            }
        }
        catch (NpgsqlException)
        {
            // A server stopped by a test: its slots go with the next run's cleanup.
        }

        await base.DisposeAsync();
    }
}
