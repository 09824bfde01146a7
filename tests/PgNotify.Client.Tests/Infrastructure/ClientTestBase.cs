using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting;
using PgNotify.Client;
using PgNotify.Tests.Infrastructure;
using PgNotify.WebSockets;

namespace PgNotify.Client.Tests.Infrastructure;

/// <summary>A real PostgreSQL database (one per class), real Kestrel hosts running PgNotify, and clients to them.</summary>
public abstract class ClientTestBase(PostgresFixture db) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _owned = [];

    protected PostgresFixture Db { get; } = db;

    protected LogCollector Logs { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
    }

    protected T Own<T>(T disposable)
        where T : IAsyncDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    /// <summary>Starts a host serving <paramref name="tables"/> on its own channel (on <paramref name="port"/> when given, so a restart keeps the URL).</summary>
    protected async Task<WebHost> StartHostAsync(string[] tables, bool lossless, int? port = null, string? channel = null, Action<PgChangeWebSocketOptions>? configureWebSockets = null)
    {
        var host = await WebHost.StartAsync(
            Db.ConnectionString,
            channel ?? PostgresFixture.NewName("ch"),
            tables,
            configureWebSockets,
            options => options.LosslessDelivery = lossless,
            builder =>
            {
                if (port is { } fixedPort)
                {
                    builder.WebHost.UseUrls($"http://127.0.0.1:{fixedPort}");
                }
            });
        return host;
    }

    protected PgNotifyClient NewClient(Uri url, Action<PgNotifyClientOptions>? configure = null, TimeProvider? time = null)
    {
        var options = new PgNotifyClientOptions
        {
            Url = url,
            MinReconnectDelay = TimeSpan.FromMilliseconds(50),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
        };
        configure?.Invoke(options);
        return Own(new PgNotifyClient(options, Logs, time));
    }

    protected Task InsertWithPsqlAsync(string table, int id, string name) =>
        Psql.RunAsync(Db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} (id, name) VALUES ({id}, '{name}')");

    /// <summary>
    /// A free port below Linux's ephemeral range (32768 and up), so that while a test's host is down no outgoing
    /// connection (psql, Npgsql, a client) can take it as its local port and keep the host from binding it again.
    /// </summary>
    protected static int FreePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            var listener = new TcpListener(IPAddress.Loopback, port);
            try
            {
                listener.Start();
                return port;
            }
            catch (System.Net.Sockets.SocketException) when (attempt < 100)
            {
                // taken: try another
            }
            finally
            {
                listener.Stop();
            }
        }
    }

    protected static int IdOf(PgChangeMessage change) => (change.Data ?? change.Old)!.Value.GetProperty("id").GetInt32();
}
