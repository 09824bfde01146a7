using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Every Core loop runs under a supervisor. A loop that dies anyway (forced here through an internal hook that throws
/// from the loop's own code, outside its per-item handling) turns health Unhealthy naming the loop and the error, is
/// restarted, and delivery resumes on the real server; the host keeps running.
/// </summary>
public sealed class LoopSupervisionTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    /// <summary>
    /// Restarts after exactly 2 s instead of a jittered delay that can be a few milliseconds: health is Unhealthy from
    /// the failure to the restart, and the test must see it between two of its polls.
    /// </summary>
    private static void SlowRestarts(CoreHost host) =>
        host.Supervisor.RestartBackoff = new PgNotify.Internal.Backoff(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(2), new AlwaysOne());

    private sealed class AlwaysOne : Random
    {
        public override double NextDouble() => 1.0;
    }

    private static Action<string> ThrowOnce(string loop)
    {
        var fired = 0;
        return name =>
        {
            if (name == loop && Interlocked.Exchange(ref fired, 1) == 0)
            {
                throw new InvalidOperationException($"injected failure of the {loop} loop");
            }
        };
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Dispatcher_WhenItDies_HealthIsUnhealthyNamingIt_ThenItRestartsAndDelivers(bool lossless)
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o => o.LosslessDelivery = lossless);
        var t = PostgresFixture.Quote(table);
        SlowRestarts(host);
        host.Supervisor.LoopFaultHook = ThrowOnce(PgNotify.Internal.LoopSupervisor.DispatcherLoop);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'a')");

        var unhealthy = await host.WaitForHealthAsync(HealthStatus.Unhealthy, describedAs: "dispatcher loop failed");
        unhealthy.Description.Should().Contain("injected failure of the dispatcher loop");
        host.Logs.WithId(1023).Should().ContainSingle();

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'b')");
        var ids = new List<int>();
        while (!ids.Contains(2))
        {
            if (await host.Changes.NextEventAsync() is PgChange change)
            {
                ids.Add(change.Data!.Value.GetProperty("id").GetInt32());
            }
        }

        if (lossless)
        {
            ids.Should().Equal(1, 2); // the log reader's state survives the restart: nothing is lost
        }

        await host.WaitForHealthAsync(HealthStatus.Healthy);
        host.Host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested.Should().BeFalse();
    }

    [Fact]
    public async Task Maintenance_WhenItDies_HealthIsUnhealthy_ThenItRestartsAndPrunesAgain()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => o.MaintenanceInterval = TimeSpan.FromMilliseconds(200));
        SlowRestarts(host);
        host.Supervisor.LoopFaultHook = ThrowOnce(PgNotify.Internal.LoopSupervisor.MaintenanceLoop);

        await host.WaitForHealthAsync(HealthStatus.Unhealthy, describedAs: "maintenance loop failed");
        await host.WaitForHealthAsync(HealthStatus.Healthy);
        host.Logs.WithId(1024).Should().Contain(l => l.Message.Contains("maintenance", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConnectLoop_WhenItDies_HealthIsUnhealthy_ThenItListensAgainAndDelivers()
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        SlowRestarts(host);
        host.Supervisor.LoopFaultHook = ThrowOnce(PgNotify.Internal.LoopSupervisor.ConnectLoop);
        await db.TerminateListenersAsync();

        await host.WaitForHealthAsync(HealthStatus.Unhealthy, describedAs: "connect loop failed");
        await host.WaitForHealthAsync(HealthStatus.Healthy);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a')");
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(1);
    }
}
