using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PgNotify.Tests.Infrastructure;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>A log entry captured by <see cref="LogCapture"/>.</summary>
public sealed record CapturedLog(string Category, int EventId, LogLevel Level, string Message, Exception? Exception);

/// <summary>Captures every log entry of a host, so tests can assert on event ids and counts.</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<CapturedLog> _entries = new();

    public IReadOnlyList<CapturedLog> Entries => [.. _entries];

    public IReadOnlyList<CapturedLog> WithId(int eventId) => [.. _entries.Where(e => e.EventId == eventId)];

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, LogCapture owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            owner._entries.Enqueue(new CapturedLog(category, eventId.Id, logLevel, formatter(state, exception), exception));
    }
}

/// <summary>A real generic host running PgNotify's listener, with its logs captured and its health check at hand.</summary>
public sealed class CoreHost : IAsyncDisposable
{
    private CoreHost(IHost host, PgChangeSubscription changes, LogCapture logs)
    {
        Host = host;
        Changes = changes;
        Logs = logs;
    }

    public IHost Host { get; }

    public PgChangeSubscription Changes { get; }

    public LogCapture Logs { get; }

    public IPgNotifyStatus Status => Host.Services.GetRequiredService<IPgNotifyStatus>();

    /// <summary>PgNotify's loop supervisor, for tests that inject a fault into a loop's turn.</summary>
    internal PgNotify.Internal.LoopSupervisor Supervisor => Host.Services.GetRequiredService<PgNotify.Internal.LoopSupervisor>();

    public static async Task<CoreHost> StartAsync(
        string connectionString, string channel, IEnumerable<string> tables, Action<PgNotifyOptions>? configure = null, bool waitUntilListening = true)
    {
        var logs = new LogCapture();
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
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
