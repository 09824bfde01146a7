using System.Net.WebSockets;
using Microsoft.AspNetCore.Builder;
using PgNotify.WebSockets;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// The preamble of most WebSocket tests in one call: create a table, start a host exposing it, connect a socket
/// subscribed to it through the URL, and wait until it is subscribed (changes flow from then on).
/// </summary>
public sealed class SubscribedSocket : IAsyncDisposable
{
    private SubscribedSocket(string table, WebHost host, TestSocket socket)
    {
        Table = table;
        Host = host;
        Socket = socket;
    }

    /// <summary>The table's name, unquoted.</summary>
    public string Table { get; }

    /// <summary>The table's name, quoted for SQL.</summary>
    public string QuotedTable => PostgresFixture.Quote(Table);

    public WebHost Host { get; }

    public TestSocket Socket { get; }

    public static async Task<SubscribedSocket> StartAsync(
        PostgresFixture db,
        Action<PgChangeWebSocketOptions>? configureWebSockets = null,
        string columns = "id int PRIMARY KEY, name text",
        Action<ClientWebSocketOptions>? configureSocket = null,
        Action<PgNotifyOptions>? configure = null,
        Action<WebApplicationBuilder>? configureBuilder = null)
    {
        var table = await db.CreateTableAsync(columns);
        var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configureWebSockets, configure, configureBuilder);
        try
        {
            var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), configureSocket);
            await socket.ReceiveTypeAsync("subscribed");
            return new SubscribedSocket(table, host, socket);
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>Another socket on the same host, subscribed to the same table.</summary>
    public async Task<TestSocket> ConnectAnotherAsync(Action<ClientWebSocketOptions>? configureSocket = null)
    {
        var socket = await TestSocket.ConnectAsync(Host.SocketUri("tables=" + Table), configureSocket);
        await socket.ReceiveTypeAsync("subscribed");
        return socket;
    }

    public async ValueTask DisposeAsync()
    {
        await Socket.DisposeAsync();
        await Host.DisposeAsync();
    }
}
