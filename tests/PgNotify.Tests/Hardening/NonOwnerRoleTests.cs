using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// The app connects as a role that does not own PgNotify's objects (InstallTriggers=false; the owner ran sql/install.sql
/// and enabled the tables). What it lacks must cost at most the changes that need it, be logged, and turn health
/// Degraded with the GRANT that fixes it; and the documented GRANTs must be enough.
/// </summary>
public sealed class NonOwnerRoleTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private async Task<string> CreateAppRoleAsync(params string[] grants)
    {
        var role = PostgresFixture.NewName("app");
        await db.ExecuteAsync($"CREATE ROLE {role} LOGIN");
        foreach (var grant in grants)
        {
            await db.ExecuteAsync(grant.Replace("@R", role, StringComparison.Ordinal));
        }

        return role;
    }

    private string ConnectionStringFor(string role) =>
        new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString;

    /// <summary>What the app role needs in live mode when it does not own PgNotify's objects (docs/security.md).</summary>
    private static readonly string[] LiveGrants =
    [
        "GRANT USAGE ON SCHEMA pgnotify TO @R",
        "GRANT SELECT ON pgnotify.large_payload TO @R",
        "GRANT EXECUTE ON FUNCTION pgnotify.enabled_tables() TO @R",
    ];

    /// <summary>A new table, enabled by the owner on a channel of its own, as an operator would with sql/enable_table.sql.</summary>
    private async Task<(string Table, string Channel)> CreateEnabledTableAsync(bool lossless = false)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var channel = PostgresFixture.NewName("ch");
        await db.ExecuteAsync("SELECT pgnotify.enable_table('public', $1, $2, '{}', $3)", table, channel, lossless);
        return (table, channel);
    }

    [Fact]
    public async Task OversizedRow_RoleCannotReadLargePayload_CostsThatChangeAsAGapAndDeliveryContinues()
    {
        var (table, channel) = await CreateEnabledTableAsync();
        var role = await CreateAppRoleAsync();
        await using var host = await CoreHost.StartAsync(ConnectionStringFor(role), channel, [table], o => o.InstallTriggers = false);

        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, $1)", new string('x', 9_000));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'small')");

        var first = await host.Changes.NextEventAsync();
        first.Should().BeOfType<PgChangeGap>().Which.Reason.Should().Be(PgChangeGapReason.Unreadable);
        var second = await host.Changes.NextEventAsync();
        second.Should().BeOfType<PgChange>().Which.Data!.Value.GetProperty("id").GetInt32().Should().Be(2);

        var health = await host.HealthAsync();
        health.Status.Should().Be(HealthStatus.Degraded);
        health.Description.Should().Contain($"GRANT SELECT ON pgnotify.large_payload TO \"{role}\"");
        host.Logs.WithId(1022).Should().ContainSingle().Which.Message.Should().Contain("GRANT SELECT ON pgnotify.large_payload");
    }

    [Fact]
    public async Task LiveMode_WithTheDocumentedGrants_IsHealthyAndOversizedRowsArriveWhole()
    {
        var (table, channel) = await CreateEnabledTableAsync();
        var role = await CreateAppRoleAsync(LiveGrants);
        await using var host = await CoreHost.StartAsync(ConnectionStringFor(role), channel, [table], o => o.InstallTriggers = false);

        var healthNow = await host.HealthAsync();
        healthNow.Status.Should().Be(HealthStatus.Healthy, healthNow.Description);
        var big = new string('x', 9_000);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, $1)", big);
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("body").GetString().Should().Be(big);
        host.Logs.WithId(1025).Should().BeEmpty();
    }

    [Fact]
    public async Task LosslessMode_WithTheDocumentedGrants_IsHealthyAndDelivers()
    {
        var (table, channel) = await CreateEnabledTableAsync(lossless: true);
        var role = await CreateAppRoleAsync(
            "GRANT USAGE ON SCHEMA pgnotify TO @R",
            "GRANT SELECT ON pgnotify.large_payload, pgnotify.change_log, pgnotify.change_log_state TO @R",
            "GRANT EXECUTE ON FUNCTION pgnotify.enabled_tables() TO @R");
        await using var host = await CoreHost.StartAsync(ConnectionStringFor(role), channel, [table], o =>
        {
            o.InstallTriggers = false;
            o.LosslessDelivery = true;
        });

        var healthNow = await host.HealthAsync();
        healthNow.Status.Should().Be(HealthStatus.Healthy, healthNow.Description);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a')");
        (await host.Changes.NextChangeAsync()).Position.Should().BePositive();
    }

    [Fact]
    public async Task Startup_LosslessWithoutRightsOnTheLog_WarnsWithTheGrantAndHealthSaysHowToFixIt()
    {
        var (table, channel) = await CreateEnabledTableAsync(lossless: true);
        var role = await CreateAppRoleAsync(LiveGrants);
        await using var host = await CoreHost.StartAsync(ConnectionStringFor(role), channel, [table], o =>
        {
            o.InstallTriggers = false;
            o.LosslessDelivery = true;
        }, waitUntilListening: false);

        // Lossless delivery cannot read anything without the log: the listener is not listening (Unhealthy), and says why.
        var health = await host.WaitForHealthAsync(HealthStatus.Unhealthy, describedAs: "GRANT SELECT ON pgnotify.change_log_state");
        health.Description.Should().Contain($"GRANT SELECT ON pgnotify.change_log TO \"{role}\"");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Logs.WithId(1026).Count >= 2, because: "it keeps retrying");
        host.Logs.WithId(1025).Should().HaveCount(2, "each problem is logged once, not on every retry");

        // Granted: the next attempt listens, and health is Healthy.
        await db.ExecuteAsync($"GRANT SELECT ON pgnotify.change_log, pgnotify.change_log_state TO {role}");
        await host.WaitForHealthAsync(HealthStatus.Healthy, TimeSpan.FromSeconds(30));
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a')");
        (await host.Changes.NextChangeAsync()).Position.Should().BePositive();
    }

    [Fact]
    public async Task Startup_MistypedTable_WarnsNamingTheFixAndHealthIsDegraded_UntilFixedAndReconnected()
    {
        var (table, channel) = await CreateEnabledTableAsync();
        var mistyped = table.ToUpperInvariant();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [mistyped], o => o.InstallTriggers = false);

        var health = await host.HealthAsync();
        health.Status.Should().Be(HealthStatus.Degraded);
        health.Description.Should().Contain($"PgNotify:Tables lists '{mistyped}'").And.Contain("sql/enable_table.sql");
        host.Logs.WithId(1025).Should().ContainSingle().Which.Level.Should().Be(Microsoft.Extensions.Logging.LogLevel.Warning);

        // Fixed in the database: checked again on the next (re)connect.
        await db.ExecuteAsync($"CREATE TABLE {PostgresFixture.Quote(mistyped)} (id int PRIMARY KEY)");
        await db.ExecuteAsync("SELECT pgnotify.enable_table('public', $1, $2)", mistyped, channel);
        await db.TerminateListenersAsync();
        await host.WaitForHealthAsync(HealthStatus.Healthy);
    }

    [Fact]
    public async Task Startup_TableEnabledOnAnotherChannel_WarnsAndHealthIsDegraded()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var channel = PostgresFixture.NewName("ch");
        await db.ExecuteAsync("SELECT pgnotify.enable_table('public', $1, 'elsewhere')", table);
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table], o => o.InstallTriggers = false);

        var health = await host.HealthAsync();
        health.Status.Should().Be(HealthStatus.Degraded);
        health.Description.Should().Contain("is enabled on channel 'elsewhere'");
    }

    [Fact]
    public async Task Maintenance_RoleWithoutDeleteRights_SaysSoOnceAndNeverWarns()
    {
        var (table, channel) = await CreateEnabledTableAsync();
        var role = await CreateAppRoleAsync(LiveGrants);
        await using var host = await CoreHost.StartAsync(
            ConnectionStringFor(role), channel, [table], o => { o.InstallTriggers = false; o.MaintenanceInterval = TimeSpan.FromMilliseconds(50); });

        // Several maintenance ticks: each is refused by PostgreSQL (42501), and that is said once, at Information.
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Logs.WithId(1029).Count > 0, because: "the first tick is refused");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a')");
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(1);
        var ticks = 0;
        host.Supervisor.LoopFaultHook = loop =>
        {
            if (loop == PgNotify.Internal.LoopSupervisor.MaintenanceLoop)
            {
                Interlocked.Increment(ref ticks);
            }
        };
        await ChangeStreamExtensions.WaitUntilAsync(() => Volatile.Read(ref ticks) >= 6, because: "maintenance keeps ticking");
        host.Logs.WithId(1029).Should().ContainSingle().Which.Level.Should().Be(LogLevel.Information);
        host.Logs.WithId(1010).Should().BeEmpty();
        var healthNow = await host.HealthAsync();
        healthNow.Status.Should().Be(HealthStatus.Healthy, healthNow.Description);
    }
}
