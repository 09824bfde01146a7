using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace PgNotify.Tests.Infrastructure;

/// <summary>A real generic host running PgNotify's listener against a test database.</summary>
public sealed class ListenerHost : IAsyncDisposable
{
    private ListenerHost(IHost host, PgChangeSubscription changes)
    {
        Host = host;
        Changes = changes;
    }

    public IHost Host { get; }

    public IPgNotifyStatus Status => Host.Services.GetRequiredService<IPgNotifyStatus>();

    public PgNotifyOptions Options => Host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<PgNotifyOptions>>().Value;

    public IPgChangeFeed Feed => Host.Services.GetRequiredService<IPgChangeFeed>();

    /// <summary>A subscription taken before the host started, so it sees every change.</summary>
    public PgChangeSubscription Changes { get; }

    public static async Task<ListenerHost> StartAsync(string connectionString, string channel, IEnumerable<string> tables, Action<PgNotifyOptions>? configure = null)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(TestOptions.LogLevel);
        builder.Services.AddPgNotifyCore(options =>
        {
            TestOptions.Apply(options, connectionString, channel, tables);
            configure?.Invoke(options);
        });
        var host = builder.Build();
        var changes = host.Services.GetRequiredService<IPgChangeFeed>().Subscribe("test");
        await host.StartAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await host.Services.GetRequiredService<IPgNotifyStatus>().WaitUntilListeningAsync(timeout.Token);
        return new ListenerHost(host, changes);
    }

    public async ValueTask DisposeAsync()
    {
        Changes.Dispose();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Host.StopAsync(timeout.Token);
        Host.Dispose();
    }
}
