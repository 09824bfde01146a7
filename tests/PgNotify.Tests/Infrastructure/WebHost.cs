using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PgNotify.WebSockets;

namespace PgNotify.Tests.Infrastructure;

/// <summary>A real Kestrel server on a loopback port running PgNotify's WebSocket endpoint.</summary>
public sealed class WebHost : IAsyncDisposable
{
    private WebHost(WebApplication app, Uri baseAddress)
    {
        App = app;
        BaseAddress = baseAddress;
    }

    public WebApplication App { get; }

    public Uri BaseAddress { get; }

    public Uri SocketUri(string query = "") =>
        new($"ws://{BaseAddress.Authority}/ws/changes/{(query.Length > 0 ? "?" + query : "")}");

    public IPgNotifyStatus Status => App.Services.GetRequiredService<IPgNotifyStatus>();

    public static async Task<WebHost> StartAsync(
        string connectionString,
        string channel,
        IEnumerable<string> tables,
        Action<PgChangeWebSocketOptions>? configureWebSockets = null,
        Action<PgNotifyOptions>? configure = null,
        Action<WebApplicationBuilder>? configureBuilder = null,
        Action<WebApplication>? configureApp = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(TestOptions.LogLevel);
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(10));
        builder.Services.AddPgNotify(
            options =>
            {
                TestOptions.Apply(options, connectionString, channel, tables);
                configure?.Invoke(options);
            },
            configureWebSockets);
        configureBuilder?.Invoke(builder);
        var app = builder.Build();
        if (configureApp is not null)
        {
            configureApp(app);
        }
        else
        {
            app.UsePgChangeWebSockets();
        }

        await app.StartAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await app.Services.GetRequiredService<IPgNotifyStatus>().WaitUntilListeningAsync(timeout.Token);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new WebHost(app, new Uri(address));
    }

    /// <summary>Wraps an app started elsewhere (for example one that cannot reach its database).</summary>
    internal static WebHost Wrap(WebApplication app)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new WebHost(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await App.StopAsync(timeout.Token);
        await App.DisposeAsync();
    }
}
