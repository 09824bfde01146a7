using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PgNotify;
using PgNotify.Internal;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers PgNotify's PostgreSQL side (listener, change feed, installer) in a service collection.</summary>
public static class PgNotifyServiceCollectionExtensions
{
    /// <summary>
    /// Adds the PgNotify listener as a hosted service, <see cref="IPgNotifyStatus"/> (its state),
    /// <see cref="IPgChangeFeed"/> and <see cref="IPgChangeLogFeed"/> for in-process consumers, and
    /// <see cref="PgNotifyInstaller"/>. Options bind from the <c>PgNotify</c> configuration section, then
    /// <paramref name="configure"/> runs; they are validated when the host starts. Calling it again only applies
    /// <paramref name="configure"/>. ASP.NET Core apps call <c>AddPgNotify</c> from PgNotify.WebSockets instead,
    /// which calls this.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets options in code, after configuration is bound.</param>
    /// <returns>The service collection, for chaining.</returns>
    public static IServiceCollection AddPgNotifyCore(this IServiceCollection services, Action<PgNotifyOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        if (configure is not null)
        {
            services.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(PgNotifyMarker)))
        {
            return services;
        }

        services.AddSingleton<PgNotifyMarker>();
        services.AddOptions<PgNotifyOptions>().ValidateOnStart();
        services.AddSingleton<PgNotifyConfigureOptions>();
        // Configuration binding goes first, so that delegates registered by Configure(...) override it.
        services.Insert(0, ServiceDescriptor.Singleton<IConfigureOptions<PgNotifyOptions>>(sp => sp.GetRequiredService<PgNotifyConfigureOptions>()));
        services.AddSingleton<IPostConfigureOptions<PgNotifyOptions>>(sp => sp.GetRequiredService<PgNotifyConfigureOptions>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PgNotifyOptions>, PgNotifyOptionsValidator>());

        // Hosts register logging first; a bare service collection gets silent loggers instead of a failure.
        services.TryAdd(ServiceDescriptor.Singleton<ILoggerFactory, NullLoggerFactory>());
        services.TryAdd(ServiceDescriptor.Singleton(typeof(ILogger<>), typeof(Logger<>)));
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<PgNotifyMetrics>();
        services.TryAddSingleton<PgNotifyConnections>();
        services.TryAddSingleton<PgChangeFeed>();
        services.TryAddSingleton<PgChangeLog>();
        services.TryAddSingleton<IPgChangeFeed>(sp => sp.GetRequiredService<PgChangeFeed>());
        services.TryAddSingleton(sp => new PgNotifyInstaller(
            sp.GetRequiredService<PgNotifyConnections>().Side, sp.GetRequiredService<ILogger<PgNotifyListener>>()));

        // The pipeline, in the order the data flows (docs/architecture.md): connection -> inbox -> source -> feed.
        services.TryAddSingleton<LoopSupervisor>();
        services.TryAddSingleton<ListenerSetup>();
        services.TryAddSingleton<NotificationInbox>();
        services.TryAddSingleton<RejectedNotifications>();
        services.TryAddSingleton<LargePayloadFetcher>();
        services.TryAddSingleton<NotificationSource>();
        services.TryAddSingleton<ChangeLogSource>();
        services.TryAddSingleton<ReplicationSetup>();
        services.TryAddSingleton<ReplicationSlots>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPgNotifyLoopStatus, ReplicationLoopStatus>());
        services.TryAddSingleton(sp => new ReplicationHistory(sp.GetRequiredService<IOptions<PgNotifyOptions>>().Value.ReplicationHistorySize));
        services.TryAddSingleton<PgTypeCatalog>();
        services.TryAddSingleton<ReplicationSource>();
        // The source is chosen here, from the options, and with it where a replay reads from (IChangeHistory).
        services.TryAddSingleton<IChangeSource>(sp => sp.GetRequiredService<IOptions<PgNotifyOptions>>().Value switch
        {
            { Source: PgChangeSourceKind.Replication } => sp.GetRequiredService<ReplicationSource>(),
            { LosslessDelivery: true } => sp.GetRequiredService<ChangeLogSource>(),
            _ => sp.GetRequiredService<NotificationSource>(),
        });
        services.TryAddSingleton<IChangeHistory>(sp => sp.GetRequiredService<IOptions<PgNotifyOptions>>().Value.Source == PgChangeSourceKind.Replication
            ? sp.GetRequiredService<ReplicationHistory>()
            : sp.GetRequiredService<PgChangeLog>());
        services.TryAddSingleton<ListenerConnection>();
        services.TryAddSingleton<IPgNotifyStatus, ListenerStatus>();
        services.TryAddSingleton<PgNotifyListener>();
        services.AddHostedService(sp => sp.GetRequiredService<PgNotifyListener>());
        services.AddHostedService<PgNotifyMaintenance>();
        services.TryAddSingleton<IPgChangeLogFeed, PgChangeLogFeed>();
        // Snapshots read what the chosen source streams, with its exclusions, so their rows are its rows.
        services.TryAddSingleton(sp => WatchedTables.For(sp.GetRequiredService<IOptions<PgNotifyOptions>>().Value));
        services.TryAddSingleton<PgTableSnapshots>();
        services.TryAddSingleton<IPgTableSnapshots>(sp => sp.GetRequiredService<PgTableSnapshots>());
        return services;
    }

    private sealed class PgNotifyMarker;
}
