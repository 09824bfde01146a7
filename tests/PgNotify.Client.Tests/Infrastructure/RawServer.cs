using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace PgNotify.Client.Tests.Infrastructure;

/// <summary>
/// A tiny raw WebSocket server on real Kestrel that says whatever a test scripts: the hostile peer (garbage frames,
/// refusals, flapping connections), not a stand-in for PgNotify. Connections are numbered from 1.
/// </summary>
public sealed class RawServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _connections;

    private RawServer(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    public Uri Url { get; }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Starts a server; <paramref name="onRequest"/> gets each upgrade request and its number, and answers or accepts it.</summary>
    public static async Task<RawServer> StartAsync(Func<HttpContext, int, Task> onRequest)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        RawServer? server = null;
        app.UseWebSockets();
        app.Run(context => onRequest(context, Interlocked.Increment(ref server!._connections)));
        await app.StartAsync();
        var address = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        server = new RawServer(app, new Uri($"ws://{address.Authority}/ws/changes/"));
        return server;
    }

    public static Task SendAsync(WebSocket socket, string text) => SendAsync(socket, Encoding.UTF8.GetBytes(text));

    public static async Task SendAsync(WebSocket socket, byte[] bytes, WebSocketMessageType type = WebSocketMessageType.Text) =>
        await socket.SendAsync(bytes, type, true, CancellationToken.None);

    /// <summary>Reads one text message (a request from the client).</summary>
    public static async Task<string?> ReceiveAsync(WebSocket socket, CancellationToken cancellationToken = default)
    {
        var buffer = new byte[64 * 1024];
        var length = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(buffer, 0, length);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
