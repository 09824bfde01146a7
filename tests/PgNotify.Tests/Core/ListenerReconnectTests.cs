using Microsoft.Extensions.DependencyInjection;
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
    public async Task Listener_WaitingTheLastFractionOfAMillisecondBeforeAProbe_KeepsAnIdleConnection()
    {
        // A clock that stands still makes every wait before the next probe the same fraction of a millisecond (the
        // interval), which a real clock meets now and then at the end of an interval. Npgsql reads a 0 ms wait as no
        // timeout: truncated to 0, the wait outlasted the watchdog on an idle connection, which dropped it (a reconnect
        // every ten seconds or so on a quiet database, and a resync for every socket each time).
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o =>
        {
            o.HealthCheckInterval = TimeSpan.FromTicks(5_000); // 0.5 ms
            o.HealthCheckTimeout = TimeSpan.FromSeconds(2); // not 1: a 1 ms wait may come back late on a busy machine
        }, services: s => s.AddSingleton<TimeProvider>(new StoppedClock()));

        // Twice the watchdog's limit (the wait plus HealthCheckTimeout) on a connection nobody notifies.
        await Task.Delay(TimeSpan.FromSeconds(4.5));
        host.Status.ReconnectCount.Should().Be(0, "an idle listener keeps its connection ({0})",
            string.Join(" | ", host.Logs.WithId(1002).Select(e => e.Exception?.Message)));
        host.Status.State.Should().Be(PgListenerState.Listening);

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'still listening')");
        (await host.Changes.NextEventAsync()).Should().BeOfType<PgChange>()
            .Which.Data!.Value.GetProperty("id").GetInt32().Should().Be(1);
    }

    [Theory]
    [InlineData(1L, 1)] // 100 ns
    [InlineData(5_000L, 1)] // 0.5 ms
    [InlineData(10_000L, 1)] // 1 ms
    [InlineData(9_992_000L, 1000)] // 999.2 ms
    [InlineData(10_000_000L, 1000)] // 1 s
    [InlineData(50_000_000L, 1000)] // 5 s: in slices of a second
    public void WaitMilliseconds_IsAtLeastOneAndAtMostASecond(long ticks, int expected) =>
        PgNotify.Internal.ListenerConnection.WaitMilliseconds(TimeSpan.FromTicks(ticks)).Should().Be(expected);

    /// <summary>System time for timers and timestamps; a wall clock that never moves.</summary>
    private sealed class StoppedClock : TimeProvider
    {
        private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;
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
