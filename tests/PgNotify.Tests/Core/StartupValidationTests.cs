using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

public sealed class StartupValidationTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddPgNotifyCore();
        return builder.Build();
    }

    [Fact]
    public async Task Start_WithoutConnectionString_FailsSayingWhereToSetIt()
    {
        using var host = Build([]);
        var start = () => host.StartAsync();
        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Message.Should().Contain("ConnectionStrings:Postgres").And.Contain("PgNotify:ConnectionString");
    }

    [Fact]
    public async Task Start_WithBadTableNamesAndChannel_FailsNamingEachProblem()
    {
        using var host = Build(new()
        {
            ["ConnectionStrings:Postgres"] = db.ConnectionString,
            ["PgNotify:Channel"] = new string('c', 64),
            ["PgNotify:Tables:0"] = "a.b.c",
            ["PgNotify:Tables:1"] = "\"unclosed",
            ["PgNotify:ExcludedColumns:elsewhere:0"] = "secret",
        });
        var start = () => host.StartAsync();
        var failure = (await start.Should().ThrowAsync<OptionsValidationException>()).Which;
        failure.Failures.Should().HaveCount(4);
        failure.Message.Should().Contain("PgNotify:Channel").And.Contain("'a.b.c' must be 'table' or 'schema.table'")
            .And.Contain("unclosed double quote").And.Contain("'elsewhere', which is not in PgNotify:Tables");
    }

    [Fact]
    public async Task Start_WithTableThatDoesNotExist_FailsNamingTheTable()
    {
        using var host = Build(new()
        {
            ["ConnectionStrings:Postgres"] = db.ConnectionString,
            ["PgNotify:Tables:0"] = "missing_table_xyz",
        });
        var start = () => host.StartAsync();
        (await start.Should().ThrowAsync<InvalidOperationException>())
            .Which.Message.Should().Contain("'missing_table_xyz'").And.Contain("does not exist").And.Contain("PgNotify:Tables");
    }

    [Fact]
    public async Task Configuration_BindsEveryOption_AndDelegateWins()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, secret text");
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Postgres"] = db.ConnectionString,
            ["PgNotify:Channel"] = "from_config",
            ["PgNotify:Tables:0"] = table,
            ["PgNotify:ExcludedColumns:" + table + ":0"] = "secret",
            ["PgNotify:ConsumerCapacity"] = "123",
            ["PgNotify:ReconnectMaxDelay"] = "00:00:07",
        });
        builder.Services.AddPgNotifyCore(o => o.Channel = "from_code");
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<PgNotifyOptions>>().Value;
        options.ConnectionString.Should().Be(db.ConnectionString);
        options.Channel.Should().Be("from_code");
        options.Tables.Should().Equal(table);
        options.ExcludedColumns[table].Should().Equal("secret");
        options.ConsumerCapacity.Should().Be(123);
        options.ReconnectMaxDelay.Should().Be(TimeSpan.FromSeconds(7));
    }

    [Fact]
    public async Task Start_WhileDatabaseIsUnreachable_DoesNotFailAndKeepsTrying()
    {
        using var host = Build(new()
        {
            // Nothing listens on port 1.
            ["ConnectionStrings:Postgres"] = "Host=127.0.0.1;Port=1;Username=postgres;Database=postgres;Timeout=2",
            ["PgNotify:ReconnectInitialDelay"] = "00:00:00.100",
        });
        await host.StartAsync();
        var listener = host.Services.GetRequiredService<IPgNotifyStatus>();
        await ChangeStreamExtensions.WaitUntilAsync(() => listener.LastError is not null);
        listener.State.Should().Be(PgListenerState.Connecting);
        await host.StopAsync();
        listener.State.Should().Be(PgListenerState.Stopped);
    }
}
