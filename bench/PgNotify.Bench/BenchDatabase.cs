using Npgsql;

namespace PgNotify.Bench;

/// <summary>The bench's own queries: the table reset before each run and the change sources' backends.</summary>
internal sealed class BenchDatabase(string connectionString)
{
    /// <summary>
    /// The PostgreSQL backends that serve the hosts' change sources: each instance's LISTEN connection or walsender
    /// (application_name "PgNotify listener" or "PgNotify replication"), so their share of PostgreSQL's CPU is known.
    /// </summary>
    public async Task<int[]> SourceBackendPidsAsync()
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT pid FROM pg_stat_activity WHERE application_name IN ('PgNotify listener', 'PgNotify replication')", connection);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            pids.Add(reader.GetInt32(0));
        }

        return [.. pids];
    }

    /// <summary>
    /// Empties the bench table (and, with the replication source, drops the instances' slots), and returns the
    /// postmaster's pid.
    /// </summary>
    public async Task<int> ResetAsync(int instances)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            CREATE TABLE IF NOT EXISTS bench_rows (bench_seq bigint NOT NULL, bench_sent bigint NOT NULL, pad text NOT NULL);
            TRUNCATE bench_rows;
            CREATE TABLE IF NOT EXISTS bench_snap (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL, tags text[] NOT NULL, at timestamptz NOT NULL);
            INSERT INTO bench_snap SELECT g, 'profile ' || g, g % 1000, ARRAY['a', 'b', g::text], '2026-12-01'::timestamptz + g * interval '1 second'
              FROM generate_series(1, 10000) g ON CONFLICT (id) DO NOTHING;
            DO $$ BEGIN
              IF to_regclass('pgnotify.large_payload') IS NOT NULL THEN TRUNCATE pgnotify.large_payload; END IF;
            END $$;
            """,
            connection);
        await command.ExecuteNonQueryAsync();
        await using var backend = new NpgsqlCommand("SELECT pg_backend_pid()", connection);
        var postmasterPid = ProcStat.ParentPid((int)(await backend.ExecuteScalarAsync())!);

        if (Environment.GetEnvironmentVariable("PgNotify__Source") == "Replication")
        {
            // Each run starts from the present: the last run's host left its backlog in the slot (rows whose
            // bench_seq the new run uses again), so its slot goes once its walsender has let go of it.
            // With --instances N, each instance's slot.
            var slots = HostGroup.InstanceNames(instances).Select(name => "pgnotify_" + name).ToArray();
            await using var drop = new NpgsqlCommand(
                "SELECT bool_or(active) FROM pg_replication_slots WHERE slot_name = ANY($1)", connection);
            drop.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = slots });
            for (var attempt = 0; attempt < 100 && await drop.ExecuteScalarAsync() is true; attempt++)
            {
                await Task.Delay(100);
            }

            drop.CommandText = "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = ANY($1) AND NOT active";
            await drop.ExecuteNonQueryAsync();
        }

        return postmasterPid;
    }
}
