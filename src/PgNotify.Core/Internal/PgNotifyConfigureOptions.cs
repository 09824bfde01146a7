using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// Binds <see cref="PgNotifyOptions"/> from the <c>PgNotify</c> configuration section when the host has configuration,
/// and afterwards (so a delegate's value wins) falls back to <c>ConnectionStrings:{ConnectionStringName}</c>.
/// </summary>
internal sealed class PgNotifyConfigureOptions(IServiceProvider services) : IConfigureOptions<PgNotifyOptions>, IPostConfigureOptions<PgNotifyOptions>
{
    private readonly IConfiguration? _configuration = (IConfiguration?)services.GetService(typeof(IConfiguration));

    public void Configure(PgNotifyOptions options) => _configuration?.GetSection(PgNotifyOptions.SectionName).Bind(options);

    public void PostConfigure(string? name, PgNotifyOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.ConnectionString) && _configuration is not null)
        {
            options.ConnectionString = _configuration.GetConnectionString(options.ConnectionStringName);
        }

        if (options.Source == PgChangeSourceKind.Replication)
        {
            options.LosslessDelivery = true; // replication positions come from the WAL: every change has one, and clients resume
        }
    }
}
