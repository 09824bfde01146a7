using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>
/// A test database on a throwaway cluster whose transaction id epoch is <see cref="Epoch"/> (scripts/pg.sh with
/// PGNOTIFY_PG_RESETWAL_EPOCH runs <c>pg_resetwal -e</c> after initdb), so 64-bit transaction ids are above 2^32 and
/// differ from pgoutput's 32-bit ones, as on a server that has run 2^32 transactions. The cluster listens on
/// PGNOTIFY_TEST_HIGH_EPOCH_PG_PORT (default 54345) and is left running like the run's own;
/// <c>PGNOTIFY_PG_PORT=54345 bash scripts/pg.sh stop</c> stops it.
/// </summary>
public sealed class HighEpochFixture : ReplicationFixture
{
    public const int Epoch = 3;

    private static string Port => Environment.GetEnvironmentVariable("PGNOTIFY_TEST_HIGH_EPOCH_PG_PORT") ?? "54345";

    protected override async Task<PostgresServer> FindServerAsync()
    {
        var connection = await ThrowawayCluster.StartAsync(Port, "PGNOTIFY_PG_RESETWAL_EPOCH", Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await using (var source = NpgsqlDataSource.Create(connection))
        await using (var xid = source.CreateCommand("SELECT pg_current_xact_id()::text::bigint >= 1::bigint << 32"))
        {
            ((bool)(await xid.ExecuteScalarAsync())!).Should().BeTrue(
                $"the cluster on port {Port} must have been made with PGNOTIFY_PG_RESETWAL_EPOCH (remove its data folder to have pg.sh make it again)");
        }

        return PostgresServer.Other(connection, $"scripts/pg.sh on port {Port}, xid epoch {Epoch}");
    }
}
