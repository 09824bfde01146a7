using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using PgNotify.Tests.Infrastructure;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// The WebSocket fan-out survives what it routes: bad data affects only its change, and a loop that dies anyway restarts
/// and shows in its state (issue 10: "Supervise the loops").
/// </summary>
public sealed class FanOutSupervisionTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ForgedRowWithLoneSurrogate_AgainstAFilter_DoesNotStopTheHost_AndDeliveryContinues()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var channel = PostgresFixture.NewName("ch");
        await using var host = await WebHost.StartAsync(db.ConnectionString, channel, [table]);
        var lifetime = host.App.Services.GetRequiredService<IHostApplicationLifetime>();
        await using var filtered = await TestSocket.ConnectAsync(host.SocketUri());
        await filtered.SubscribeAsync(table, new { filter = new { name = new { lt = "zzz" } } });
        await using var bystander = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await bystander.ReceiveTypeAsync("subscribed");

        // Live delivery accepts well-formed notifications from any role (docs/security.md): a row with a lone surrogate.
        await db.ExecuteAsync(
            "SELECT pg_notify($1, '{\"v\":1,\"schema\":\"public\",\"table\":\"' || $2 || '\",\"op\":\"INSERT\",\"xid\":1,\"seq\":1,\"data\":{\"id\":-1,\"name\":\"\\ud800\"}}')",
            channel, table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'real')");

        var frames = new List<int>();
        while (!frames.Contains(1))
        {
            var frame = await bystander.ReceiveAsync();
            frames.Add(frame.TryGetProperty("data", out var data) ? data.GetProperty("id").GetInt32() : throw new InvalidOperationException(frame.ToString()));
        }

        (await filtered.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1, "the forged row matches no filter");
        lifetime.ApplicationStopping.IsCancellationRequested.Should().BeFalse();
    }

    [Fact]
    public async Task ExceptionRoutingOneChange_AffectsOnlyThatChange_ItsSubscribersResync_AndOthersGoOn()
    {
        var poisoned = await db.CreateTableAsync();
        var healthy = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [poisoned, healthy]);
        var router = host.App.Services.GetRequiredService<PgChangeRouter>();
        var supervisor = host.App.Services.GetRequiredService<FanOutSupervisor>();
        router.BeforeRoute = item =>
        {
            if (item is PgChange change && change.Table.Name == poisoned && change.Data?.GetProperty("name").GetString() == "boom")
            {
                throw new InvalidOperationException("a bug met while routing this change");
            }
        };
        await using var victim = await TestSocket.ConnectAsync(host.SocketUri("tables=" + poisoned));
        await using var other = await TestSocket.ConnectAsync(host.SocketUri("tables=" + healthy));
        await victim.ReceiveTypeAsync("subscribed");
        await other.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(poisoned)} VALUES (1, 'boom')");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(healthy)} VALUES (1, 'fine')");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(poisoned)} VALUES (2, 'after')");

        var resync = await victim.ReceiveAsync();
        resync.GetProperty("type").GetString().Should().Be("resync");
        resync.GetProperty("reason").GetString().Should().Be("server_error");
        (await victim.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        (await other.ReceiveAsync()).GetProperty("data").GetProperty("name").GetString().Should().Be("fine");
        supervisor.FailedChangeCount.Should().Be(1);
        supervisor.State.Should().Be(PgRouterState.Running);
        supervisor.RestartCount.Should().Be(0);
    }

    [Fact]
    public async Task ExceptionRoutingAChangeToOneSocket_ResyncsOnlyThatSocket()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var router = host.App.Services.GetRequiredService<PgChangeRouter>();
        var supervisor = host.App.Services.GetRequiredService<FanOutSupervisor>();
        router.BeforeRouteTo = (change, session) =>
        {
            if (session.HttpContext.Request.Query.ContainsKey("victim") && change.Data?.GetProperty("id").GetInt32() == 1)
            {
                throw new InvalidOperationException("a bug met while routing to this socket");
            }
        };
        await using var victim = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&victim=1"));
        await using var other = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await victim.ReceiveTypeAsync("subscribed");
        await other.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a'), (2, 'b')");

        (await other.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        (await other.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        var resync = await victim.ReceiveAsync();
        resync.GetProperty("reason").GetString().Should().Be("server_error", resync.ToString());
        (await victim.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        supervisor.FailedChangeCount.Should().Be(1);
    }

    [Fact]
    public async Task FanOutLoopThatDies_IsReportedAndRestarts_AndDeliveryResumes()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db);
        var (t, socket, services) = (scenario.QuotedTable, scenario.Socket, scenario.Host.App.Services);
        var lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        var router = services.GetRequiredService<PgChangeRouter>();
        var supervisor = services.GetRequiredService<FanOutSupervisor>();

        var fail = 1;
        router.BeforeBatch = () =>
        {
            if (Interlocked.Exchange(ref fail, 0) == 1)
            {
                throw new InvalidOperationException("the loop itself failed");
            }
        };
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'wakes the loop')");

        var resync = await socket.ReceiveTypeAsync("resync");
        resync.GetProperty("reason").GetString().Should().Be("server_error");
        supervisor.RestartCount.Should().Be(1);
        supervisor.LastFault.Should().BeOfType<InvalidOperationException>();

        await ChangeStreamExtensions.WaitUntilAsync(() => supervisor.State == PgRouterState.Running, because: "the loop restarts");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'after the restart')");
        var ids = new List<int>();
        while (!ids.Contains(2))
        {
            ids.Add((await socket.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32());
        }

        lifetime.ApplicationStopping.IsCancellationRequested.Should().BeFalse();
    }

    [Fact]
    public async Task FanOutLoopThatKeepsDying_TurnsHealthUnhealthy_UntilItRunsAgain()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, configureBuilder: b => b.Services.AddHealthChecks().AddPgNotify());
        var (t, socket, services) = (scenario.QuotedTable, scenario.Socket, scenario.Host.App.Services);
        var health = services.GetRequiredService<HealthCheckService>();
        var router = services.GetRequiredService<PgChangeRouter>();
        (await health.CheckHealthAsync()).Status.Should().Be(HealthStatus.Healthy);

        var failing = 1;
        router.BeforeBatch = () =>
        {
            if (Volatile.Read(ref failing) == 1)
            {
                throw new InvalidOperationException("the loop itself failed");
            }
        };
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'wakes the loop')");

        // While it keeps failing it spends its time waiting to restart, with backoff: health must say so.
        HealthReport? report = null;
        await ChangeStreamExtensions.WaitUntilAsync(
            () => (report = health.CheckHealthAsync().GetAwaiter().GetResult()).Status == HealthStatus.Unhealthy,
            because: "a fan-out loop that died is reported");
        report!.Entries["pgnotify"].Description.Should().Contain("fan-out").And.Contain("the loop itself failed");
        report.Entries["pgnotify"].Data["fanout_restarts"].Should().BeOfType<int>().Which.Should().BeGreaterThan(0);

        Volatile.Write(ref failing, 0);
        await ChangeStreamExtensions.WaitUntilAsync(
            () => health.CheckHealthAsync().GetAwaiter().GetResult().Status == HealthStatus.Healthy,
            because: "health recovers once the loop runs again");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'after the restart')");
        var ids = new List<int>();
        while (!ids.Contains(2))
        {
            ids.Add((await socket.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32());
        }
    }
}
