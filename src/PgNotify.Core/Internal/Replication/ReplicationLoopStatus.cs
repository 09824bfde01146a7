using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>
/// The replication stream and slot in PgNotify's health check (registered always, reporting only with
/// <see cref="PgChangeSourceKind.Replication"/>): the slot's name and retained WAL, and a failing stream.
/// </summary>
internal sealed class ReplicationLoopStatus(IOptions<PgNotifyOptions> options, IServiceProvider services) : IPgNotifyLoopStatus
{
    private readonly ReplicationSlots? _slots = options.Value.Source == PgChangeSourceKind.Replication
        ? services.GetRequiredService<ReplicationSlots>()
        : null;

    public string? Failure => _slots?.Failure;

    public Exception? LastFault => _slots?.LastFault;

    public void AddData(IDictionary<string, object> data) => _slots?.AddData(data);
}
