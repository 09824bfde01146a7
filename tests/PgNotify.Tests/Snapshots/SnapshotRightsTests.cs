using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PgNotify.Tests.Hardening;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// docs/security.md: an app role that does not own the tables needs, for snapshots, SELECT on each table besides the
/// documented live grants; without it the snapshot says which GRANT is missing.
/// </summary>
public sealed class SnapshotRightsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task AppRoleWithoutSelectOnTheTable_GetsUnavailableNamingTheGrant_AndWithItReadsTheRows()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text, secret text");
        var channel = PostgresFixture.NewName("ch");
        await db.ExecuteAsync("SELECT pgnotify.enable_table('public', $1, $2, '{secret}', false)", table, channel);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a', 's1'), (2, 'b', 's2')");
        var role = PostgresFixture.NewName("app");
        await db.ExecuteAsync($"CREATE ROLE {role} LOGIN");
        await db.ExecuteAsync($"GRANT USAGE ON SCHEMA pgnotify TO {role}");
        await db.ExecuteAsync($"GRANT SELECT ON pgnotify.large_payload TO {role}");
        await db.ExecuteAsync($"GRANT EXECUTE ON FUNCTION pgnotify.enabled_tables() TO {role}");
        var connection = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString;
        await using var host = await CoreHost.StartAsync(connection, channel, [table], o => o.InstallTriggers = false);
        var snapshots = host.Host.Services.GetRequiredService<IPgTableSnapshots>();
        var name = new PgTableName("public", table);

        await using (var snapshot = await snapshots.BeginAsync())
        {
            var read = async () => await snapshot.GetKeyAsync(name);
            (await read.Should().ThrowAsync<PgSnapshotUnavailableException>()).Which.Message.Should().Contain($"GRANT SELECT ON {table}");
        }

        await db.ExecuteAsync($"GRANT SELECT ON {PostgresFixture.Quote(table)} TO {role}");
        await using (var snapshot = await snapshots.BeginAsync())
        {
            (await snapshot.GetKeyAsync(name)).Should().Equal("id");
            var rows = new List<string>();
            await foreach (var row in snapshot.ReadRowsAsync(name))
            {
                rows.Add(System.Text.Json.JsonSerializer.Serialize(row));
            }

            rows.Should().Equal("""{"id":1,"body":"a"}""", """{"id":2,"body":"b"}""");
        }
    }
}
