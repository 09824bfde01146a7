using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// PgNotify's own data sources, separate from the application's: one for the dedicated LISTEN connection (no pooling,
/// no multiplexing, keepalive on) and a small pooled one for side queries (installer, large payloads, the change log reader, replays, maintenance), and one
/// for table snapshots.
/// A backend termination clears only these pools, never the application's.
/// </summary>
internal sealed class PgNotifyConnections : IAsyncDisposable
{
    private readonly Lazy<NpgsqlDataSource> _listener;
    private readonly Lazy<NpgsqlDataSource> _side;
    private readonly Lazy<NpgsqlDataSource> _snapshots;

    public PgNotifyConnections(IOptions<PgNotifyOptions> options)
    {
        var connectionString = options.Value.ConnectionString
            ?? throw new InvalidOperationException("PgNotify has no connection string.");
        var interval = options.Value.HealthCheckInterval;

        _listener = new Lazy<NpgsqlDataSource>(() =>
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString)
            {
                Pooling = false,
                Multiplexing = false,
                Enlist = false,
                TcpKeepAlive = true,
                TcpKeepAliveTime = Math.Max(1, (int)interval.TotalSeconds),
                TcpKeepAliveInterval = Math.Max(1, (int)interval.TotalSeconds),
                ApplicationName = "PgNotify listener",
                // A cancelled wait or probe abandons the connection at once instead of waiting for the server.
                CancellationTimeout = -1,
            };
            return NpgsqlDataSource.Create(builder);
        });
        _side = new Lazy<NpgsqlDataSource>(() =>
        {
            var builder = new NpgsqlConnectionStringBuilder(connectionString)
            {
                Pooling = true,
                MaxPoolSize = options.Value.MaxConcurrentReplays + 3,
                Multiplexing = false,
                Enlist = false,
                ApplicationName = "PgNotify",
            };
            return NpgsqlDataSource.Create(builder);
        });
        _snapshots = new Lazy<NpgsqlDataSource>(() =>
        {
            // Snapshots get a pool of their own, sized to how many may run at once: however many sockets ask, they
            // never take the side pool's connections (large payloads, the change log reader) or the listener's.
            var builder = new NpgsqlConnectionStringBuilder(connectionString)
            {
                Pooling = true,
                MaxPoolSize = options.Value.MaxConcurrentSnapshots,
                Multiplexing = false,
                Enlist = false,
                ApplicationName = "PgNotify snapshots",
            };
            return NpgsqlDataSource.Create(builder);
        });
    }

    public NpgsqlDataSource Listener => _listener.Value;

    public NpgsqlDataSource Side => _side.Value;

    public NpgsqlDataSource Snapshots => _snapshots.Value;

    public async ValueTask DisposeAsync()
    {
        if (_listener.IsValueCreated)
        {
            await _listener.Value.DisposeAsync().ConfigureAwait(false);
        }

        if (_side.IsValueCreated)
        {
            await _side.Value.DisposeAsync().ConfigureAwait(false);
        }

        if (_snapshots.IsValueCreated)
        {
            await _snapshots.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
