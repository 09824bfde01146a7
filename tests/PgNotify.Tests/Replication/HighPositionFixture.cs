using System.Diagnostics;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>
/// A test database on a throwaway cluster whose WAL starts at 40/0 (256 GiB; scripts/pg.sh with
/// PGNOTIFY_PG_RESETWAL_FILE runs <c>pg_resetwal -l</c> after initdb), so the replication source's positions,
/// <c>(commit LSN &lt;&lt; 16) + sequence</c>, are real ones above 2^53 without writing 128 GiB. The cluster listens on
/// PGNOTIFY_TEST_HIGH_POSITION_PG_PORT (default 54344) and is left running like the run's own (test classes of both
/// test projects share it, each with its database); <c>PGNOTIFY_PG_PORT=54344 bash scripts/pg.sh stop</c> stops it.
/// </summary>
public sealed class HighPositionFixture : ReplicationFixture
{
    /// <summary>The WAL file the cluster starts at: timeline 1, LSN 40/0.</summary>
    public const string WalFile = "000000010000004000000000";

    private static string Port => Environment.GetEnvironmentVariable("PGNOTIFY_TEST_HIGH_POSITION_PG_PORT") ?? "54344";

    protected override async Task<PostgresServer> FindServerAsync()
    {
        var connection = $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres";
        await StartClusterAsync();
        await using (var source = NpgsqlDataSource.Create(connection))
        await using (var lsn = source.CreateCommand("SELECT pg_current_wal_lsn() >= '20/0'::pg_lsn"))
        {
            ((bool)(await lsn.ExecuteScalarAsync())!).Should().BeTrue(
                $"the cluster on port {Port} must have been made with PGNOTIFY_PG_RESETWAL_FILE (remove its data folder to have pg.sh make it again)");
        }

        return PostgresServer.Other(connection, $"scripts/pg.sh on port {Port}, WAL from {WalFile}");
    }

    /// <summary>Starts the cluster (pg.sh start is idempotent), one process at a time: both test projects may run at once.</summary>
    private static async Task StartClusterAsync()
    {
        var lockPath = Path.Combine(Path.GetTempPath(), $"pgnotify-pg-{Port}.start-lock");
        FileStream? held = null;
        for (var attempt = 0; held is null; attempt++)
        {
            try
            {
                held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 600)
            {
                await Task.Delay(100); // another test process is starting the cluster: polled, not asserted
            }
        }

        await using (held)
        {
            var info = new ProcessStartInfo("bash", [Path.Combine(PostgresServer.RepositoryRoot, "scripts", "pg.sh"), "start"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            info.Environment["PGNOTIFY_PG_PORT"] = Port;
            info.Environment["PGNOTIFY_PG_RESETWAL_FILE"] = WalFile;
            info.Environment.Remove("PGNOTIFY_PG_WAL_LEVEL");
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            process.ExitCode.Should().Be(0, await stderr);
        }
    }
}
