using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>Operators' mistakes are reported where they are made, once, with the fix, and without flooding the log.</summary>
public sealed class StartupDiagnosticsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private static string WrongPort(string connectionString)
    {
        // A port nothing listens on: bound, then released.
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        var port = ((IPEndPoint)socket.LocalEndpoint).Port;
        socket.Stop();
        return new NpgsqlConnectionStringBuilder(connectionString) { Port = port }.ConnectionString;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task WrongPort_LogsTheStackOnceThenOneLinePerRetry(bool installTriggers)
    {
        var table = await db.CreateTableAsync();
        await using var host = await CoreHost.StartAsync(WrongPort(db.ConnectionString), PostgresFixture.NewName("ch"), [table], o =>
        {
            o.InstallTriggers = installTriggers;
            o.ReconnectInitialDelay = TimeSpan.FromMilliseconds(10);
            o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(50);
        }, waitUntilListening: false);

        await ChangeStreamExtensions.WaitUntilAsync(() => host.Logs.WithId(1026).Count >= 20, because: "it keeps retrying");
        var withStack = host.Logs.Entries.Where(e => e.Exception is not null && e.Category.StartsWith("PgNotify", StringComparison.Ordinal)).ToList();
        withStack.Should().ContainSingle("the stack is logged once, at the first failure");
        host.Logs.WithId(1026).Should().OnlyContain(e => e.Exception == null && !e.Message.Contains('\n', StringComparison.Ordinal));
        (await host.HealthAsync()).Status.Should().Be(HealthStatus.Unhealthy);

        var startup = host.Logs.WithId(1004).Should().ContainSingle().Subject;
        if (installTriggers)
        {
            startup.Message.Should().Contain("install its triggers");
        }
        else
        {
            startup.Message.Should().NotContain("install", "InstallTriggers is off: PgNotify installs nothing");
        }
    }
}
