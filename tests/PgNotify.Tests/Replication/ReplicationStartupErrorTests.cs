using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>Each reason the replication source cannot start fails the host's start with a message naming the fix.</summary>
public sealed class ReplicationStartupErrorTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    /// <summary>A throwaway second cluster (scripts/pg.sh), on PGNOTIFY_TEST_EXTRA_PG_PORT (default 54342).</summary>
    private static string ExtraPort => Environment.GetEnvironmentVariable("PGNOTIFY_TEST_EXTRA_PG_PORT") ?? "54342";

    [Fact]
    public async Task RoleWithoutReplicationPrivilege_FailsTheStart_NamingAlterRole()
    {
        var role = PostgresFixture.NewName("norepl");
        await db.ExecuteAsync($"CREATE ROLE {role} LOGIN NOREPLICATION");
        var connection = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString;

        var start = () => CoreHost.StartAsync(connection, PostgresFixture.NewName("ch"), [], o =>
        {
            ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance());
            o.InstallTriggers = false;
        });

        (await start.Should().ThrowAsync<InvalidOperationException>())
            .WithMessage($"*role '{role}' may not open a replication connection*ALTER ROLE \"{role}\" REPLICATION*");
    }

    [Fact]
    public async Task TableWithoutUsableReplicaIdentity_FailsTheStart_NamingReplicaIdentityFull()
    {
        var table = await db.CreateTableAsync("id int, name text");
        await db.ExecuteAsync($"ALTER TABLE {PostgresFixture.Quote(table)} REPLICA IDENTITY NOTHING");
        await db.ExecuteAsync("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'pgnotify') THEN CREATE PUBLICATION pgnotify; END IF; END $$");
        await db.ExecuteAsync($"ALTER PUBLICATION pgnotify ADD TABLE {PostgresFixture.Quote(table)}");

        var start = () => CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance());
            o.InstallTriggers = false;
        });

        (await start.Should().ThrowAsync<InvalidOperationException>())
            .WithMessage($"*replica identity is NOTHING*ALTER TABLE \"public\".\"{table}\" REPLICA IDENTITY FULL*");
    }

    [Fact]
    public async Task WalLevelNotLogical_ThenNoFreeSlot_EachFailsTheStart_NamingTheFix()
    {
        var connection = $"Host=127.0.0.1;Port={ExtraPort};Username=postgres;Database=postgres";
        try
        {
            await PgShAsync("start", walLevel: "replica");
            var start = () => CoreHost.StartAsync(connection, PostgresFixture.NewName("ch"), [], o =>
                ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
            (await start.Should().ThrowAsync<InvalidOperationException>())
                .WithMessage("*wal_level = replica*Set wal_level = logical*restart PostgreSQL*");

            await PgShAsync("start", walLevel: null); // pg.sh restarts the running cluster with wal_level = logical
            await using var source = NpgsqlDataSource.Create(connection);
            await using (var fill = source.CreateCommand(
                "SELECT count(pg_create_physical_replication_slot('filler_' || g)) FROM generate_series(1, current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)) g"))
            {
                await fill.ExecuteScalarAsync();
            }

            (await start.Should().ThrowAsync<InvalidOperationException>())
                .WithMessage("*all max_replication_slots = * are in use*Raise max_replication_slots*pg_drop_replication_slot*filler_1*");
            await using var drop = source.CreateCommand("SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name LIKE 'filler\\_%'");
            await drop.ExecuteScalarAsync();
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            await PgShAsync("stop", walLevel: null);
        }
    }

    private static Task PgShAsync(string verb, string? walLevel) =>
        ThrowawayCluster.PgShAsync(verb, ExtraPort, new Dictionary<string, string?> { ["PGNOTIFY_PG_WAL_LEVEL"] = walLevel });
}
