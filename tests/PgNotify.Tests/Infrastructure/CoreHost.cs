using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// A real generic host running PgNotify.Core (no web server) against a test database: a subscription taken before
/// the start, its logs captured (and written to the console at <see cref="TestOptions.LogLevel"/>), its status,
/// options and health check at hand.
/// </summary>
public sealed class CoreHost : IAsyncDisposable
{
    private CoreHost(IHost host, PgChangeSubscription changes, LogCapture logs)
    {
        Host = host;
        Changes = changes;
        Logs = logs;
    }

    public IHost Host { get; }

    /// <summary>A subscription taken before the host started, so it sees every change.</summary>
    public PgChangeSubscription Changes { get; }

    public LogCapture Logs { get; }

    public IPgNotifyStatus Status => Host.Services.GetRequiredService<IPgNotifyStatus>();

    public PgNotifyOptions Options => Host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PgNotifyOptions>>().Value;

    public IPgChangeFeed Feed => Host.Services.GetRequiredService<IPgChangeFeed>();

    /// <summary>PgNotify's loop supervisor, for tests that inject a fault into a loop's turn.</summary>
    internal PgNotify.Internal.LoopSupervisor Supervisor => Host.Services.GetRequiredService<PgNotify.Internal.LoopSupervisor>();

    public static async Task<CoreHost> StartAsync(
        string connectionString, string channel, IEnumerable<string> tables, Action<PgNotifyOptions>? configure = null, bool waitUntilListening = true,
        Action<IServiceCollection>? services = null)
    {
        var logs = new LogCapture();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        builder.Logging.AddSimpleConsole().AddFilter<Microsoft.Extensions.Logging.Console.ConsoleLoggerProvider>(null, TestOptions.LogLevel);
        services?.Invoke(builder.Services); // before PgNotify's own registrations, which are TryAdd
        builder.Services.AddPgNotifyCore(options =>
        {
            TestOptions.Apply(options, connectionString, channel, tables);
            configure?.Invoke(options);
        });
        var host = builder.Build();
        var changes = host.Services.GetRequiredService<IPgChangeFeed>().Subscribe("test");
        await host.StartAsync();
        if (waitUntilListening)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await host.Services.GetRequiredService<IPgNotifyStatus>().WaitUntilListeningAsync(timeout.Token);
        }

        return new CoreHost(host, changes, logs);
    }

    /// <summary>Runs PgNotify.Core's health check (over IPgNotifyStatus; no WebSocket fan-out in a Core host).</summary>
    public Task<HealthCheckResult> HealthAsync()
    {
        var check = PgNotify.Internal.ListenerHealthCheck.Create(Host.Services, 0.5);
        var context = new HealthCheckContext { Registration = new HealthCheckRegistration("pgnotify", check, HealthStatus.Unhealthy, null) };
        return check.CheckHealthAsync(context);
    }

    /// <summary>Waits until the health check reports <paramref name="status"/>, and returns that result.</summary>
    public async Task<HealthCheckResult> WaitForHealthAsync(HealthStatus status, TimeSpan? timeout = null, string? describedAs = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var result = await HealthAsync();
            if (result.Status == status && (describedAs is null || result.Description?.Contains(describedAs, StringComparison.Ordinal) == true))
            {
                return result;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Health stayed {result.Status} ({result.Description}), expected {status}.");
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Changes.Dispose();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Host.StopAsync(timeout.Token);
        Host.Dispose();
    }
}
