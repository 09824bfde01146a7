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
        var connection = await ThrowawayCluster.StartAsync(Port, "PGNOTIFY_PG_RESETWAL_FILE", WalFile);
        await using (var source = NpgsqlDataSource.Create(connection))
        await using (var lsn = source.CreateCommand("SELECT pg_current_wal_lsn() >= '20/0'::pg_lsn"))
        {
            ((bool)(await lsn.ExecuteScalarAsync())!).Should().BeTrue(
                $"the cluster on port {Port} must have been made with PGNOTIFY_PG_RESETWAL_FILE (remove its data folder to have pg.sh make it again)");
        }

        return PostgresServer.Other(connection, $"scripts/pg.sh on port {Port}, WAL from {WalFile}");
    }
}
