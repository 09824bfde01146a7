using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

/// <summary>The listener survives losing its connection, the way production loses it.</summary>
public sealed class ListenerReconnectTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Listener_AfterBackendTerminated_ReconnectsSignalsTheGapAndDeliversLaterChanges()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'before')");
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(1);

        for (var round = 1; round <= 3; round++)
        {
            var terminated = await db.TerminateListenersAsync();
            terminated.Should().Be(1);

            var gap = await host.Changes.NextEventAsync();
            gap.Should().BeOfType<PgChangeGap>().Which.Reason.Should().Be(PgChangeGapReason.ListenerReconnected);
            host.Status.State.Should().Be(PgListenerState.Listening);
            host.Status.ReconnectCount.Should().Be(round);

            await db.ExecuteAsync($"INSERT INTO {t} VALUES ($1, 'after')", 100 + round);
            (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(100 + round);
        }
    }

    [Fact]
    public async Task Listener_OnHalfOpenConnection_DetectsItWithinSecondsAndReconnects()
    {
        var table = await db.CreateTableAsync();
        var target = new NpgsqlConnectionStringBuilder(db.ConnectionString);
        await using var proxy = new TcpProxy(target.Host!, target.Port);
        var viaProxy = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Host = "127.0.0.1", Port = proxy.Port }.ConnectionString;
        await using var host = await CoreHost.StartAsync(viaProxy, PostgresFixture.NewName("ch"), [table], o =>
        {
            o.HealthCheckInterval = TimeSpan.FromSeconds(1);
            o.HealthCheckTimeout = TimeSpan.FromSeconds(1);
        });
        var t = PostgresFixture.Quote(table);

        // The network path dies silently: no FIN, no RST, nothing arrives any more.
        proxy.BlackholeExisting();
        Console.WriteLine($"BLACKHOLED {DateTime.UtcNow:O} channel {host.Options.Channel}");
        var cutAt = DateTime.UtcNow;
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'lost in the gap')");

        var gap = await host.Changes.NextEventAsync(TimeSpan.FromSeconds(20));
        gap.Should().BeOfType<PgChangeGap>().Which.Reason.Should().Be(PgChangeGapReason.ListenerReconnected);
        (DateTime.UtcNow - cutAt).Should().BeLessThan(TimeSpan.FromSeconds(10));

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'after')");
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(2);
    }

    [Fact]
    public async Task Host_StopWhileListening_StopsPromptlyAndCompletesConsumers()
    {
        var table = await db.CreateTableAsync();
        var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var reader = host.Feed.Subscribe("completion");
        var listener = host.Status;

        var started = DateTime.UtcNow;
        await host.DisposeAsync();

        (DateTime.UtcNow - started).Should().BeLessThan(TimeSpan.FromSeconds(5));
        listener.State.Should().Be(PgListenerState.Stopped);
        await reader.Reader.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        // The backend goes away a moment after the client closes its socket.
        await ChangeStreamExtensions.WaitUntilAsync(
            () => db.ScalarAsync<long>("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'PgNotify listener' AND datname = current_database()").GetAwaiter().GetResult() == 0,
            TimeSpan.FromSeconds(5),
            "the listener's connection is closed when the host stops");
    }
}
