using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// The snapshot data source's connections and slots when the database goes away: a pooled connection the server
/// closed is replaced, not reported as a failed snapshot, and a failed open gives its slot back.
/// </summary>
public sealed class SnapshotPoolTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Snapshot_AfterTheServerClosedItsPooledConnections_BeginsOnANewOne()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o => o.MaxConcurrentSnapshots = 3);
        var snapshots = host.Host.Services.GetRequiredService<IPgTableSnapshots>();
        var name = new PgTableName("public", table);

        // Three snapshots at once leave three idle connections in the pool.
        var open = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => snapshots.BeginAsync()));
        foreach (var snapshot in open)
        {
            (await snapshot.GetKeyAsync(name)).Should().Equal("id");
            await snapshot.DisposeAsync();
        }

        // As a restart, a failover or idle_session_timeout would: the server ends them while they sit in the pool.
        (await db.ScalarAsync<long>("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            + "WHERE application_name = 'PgNotify snapshots' AND datname = current_database()) t")).Should().Be(3);
        await ChangeStreamExtensions.WaitUntilAsync(() => db.ScalarAsync<long>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'PgNotify snapshots' AND datname = current_database()").GetAwaiter().GetResult() == 0);

        for (var i = 0; i < 3; i++)
        {
            await using var snapshot = await snapshots.BeginAsync();
            (await snapshot.GetKeyAsync(name)).Should().Equal("id");
        }

        host.Logs.WithId(1050).Should().BeEmpty("no snapshot failed");
        host.Logs.WithId(1051).Should().ContainSingle("the first use found the pool stale and cleared it; the others were new");
    }

    [Fact]
    public async Task Snapshot_WhenTheDatabaseCannotBeReached_FailsEveryTime_AndNeverRunsOutOfSlots()
    {
        // A port nothing listens on: every open fails at once.
        using var placeholder = new TcpListener(IPAddress.Loopback, 0);
        placeholder.Start();
        var port = ((IPEndPoint)placeholder.LocalEndpoint).Port;
        placeholder.Stop();
        var unreachable = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Host = "127.0.0.1", Port = port, Timeout = 2 }.ConnectionString;
        await using var host = await CoreHost.StartAsync(unreachable, PostgresFixture.NewName("ch"), ["t"], o => o.MaxConcurrentSnapshots = 1,
            waitUntilListening: false);
        var snapshots = host.Host.Services.GetRequiredService<IPgTableSnapshots>();

        // One slot, five attempts: each must fail on its own, none may wait for a slot a failed one kept.
        for (var i = 0; i < 5; i++)
        {
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var begin = async () => await snapshots.BeginAsync(deadline.Token);
            await begin.Should().ThrowAsync<NpgsqlException>();
        }

        host.Logs.WithId(1050).Should().HaveCount(5);
    }
}
