using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using PgNotify;
using PgNotify.WebSockets;
using PgNotify.WebSockets.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers PgNotify with its WebSocket endpoint in an ASP.NET Core app.</summary>
public static class PgChangeWebSocketServiceCollectionExtensions
{
    /// <summary>
    /// Adds PgNotify: the PostgreSQL listener and change feed (see <c>AddPgNotifyCore</c>) and the WebSocket fan-out
    /// that <c>app.UsePgChangeWebSockets()</c> or <c>app.MapPgChangeWebSockets()</c> serves. Options bind from the
    /// configuration sections <c>PgNotify</c> and <c>PgNotify:WebSockets</c>; the delegates run after binding.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the PostgreSQL side's options in code.</param>
    /// <param name="configureWebSockets">Sets the WebSocket endpoint's options (limits, origins, hooks) in code.</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddPgNotify(
        this IServiceCollection services,
        Action<PgNotifyOptions>? configure = null,
        Action<PgChangeWebSocketOptions>? configureWebSockets = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddPgNotifyCore(configure);
        if (configureWebSockets is not null)
        {
            services.Configure(configureWebSockets);
        }

        if (services.Any(d => d.ServiceType == typeof(PgChangeWebSocketMarker)))
        {
            return services;
        }

        services.AddSingleton<PgChangeWebSocketMarker>();
        services.Insert(0, ServiceDescriptor.Singleton<IConfigureOptions<PgChangeWebSocketOptions>>(sp =>
            new ConfigureOptions<PgChangeWebSocketOptions>(options =>
                sp.GetService<IConfiguration>()?.GetSection(PgChangeWebSocketOptions.SectionName).Bind(options))));
        services.AddOptions<PgChangeWebSocketOptions>().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PgChangeWebSocketOptions>, PgChangeWebSocketOptionsValidator>());
        services.TryAddSingleton<WebSocketMetrics>();
        services.TryAddSingleton<ChangeSource>();
        services.TryAddSingleton<PgChangeRouter>();
        services.AddSingleton<IHostedService>(sp => sp.GetRequiredService<PgChangeRouter>());
        services.TryAddSingleton<FanOutSupervisor>();
        services.AddSingleton<IPgNotifyLoopStatus>(sp => sp.GetRequiredService<FanOutSupervisor>());
        services.TryAddSingleton<PgChangeWebSocketHandler>();
        return services;
    }

    internal static void EnsureAdded(IServiceProvider services)
    {
        if (services.GetService<PgChangeWebSocketMarker>() is null)
        {
            throw new InvalidOperationException(
                "PgNotify's services are not registered. Call 'builder.Services.AddPgNotify(...)' in Program.cs before 'app.UsePgChangeWebSockets()' or 'app.MapPgChangeWebSockets()'.");
        }
    }

    internal sealed class PgChangeWebSocketMarker;
}
