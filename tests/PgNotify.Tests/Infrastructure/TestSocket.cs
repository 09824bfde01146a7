using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace PgNotify.Tests.Infrastructure;

/// <summary>A real <see cref="ClientWebSocket"/> speaking PgNotify's protocol, with timeouts on every wait.</summary>
public sealed class TestSocket : IAsyncDisposable
{
    private byte[] _buffer = new byte[64 * 1024];

    private TestSocket(ClientWebSocket socket) => Socket = socket;

    /// <summary>Like a browser's JSON.parse, frames are read at any depth (rows may nest far past 64 levels).</summary>
    private static readonly JsonDocumentOptions AnyDepth = new() { MaxDepth = int.MaxValue };

    public ClientWebSocket Socket { get; }

    public WebSocketCloseStatus? CloseStatus { get; private set; }

    public static async Task<TestSocket> ConnectAsync(
        Uri uri, Action<ClientWebSocketOptions>? configure = null, bool expectWelcome = true, HttpMessageInvoker? invoker = null)
    {
        var socket = new ClientWebSocket();
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await socket.ConnectAsync(uri, invoker, timeout.Token);
        var test = new TestSocket(socket);
        if (expectWelcome)
        {
            var welcome = await test.ReceiveAsync();
            welcome.GetProperty("type").GetString().Should().Be("welcome");
        }

        return test;
    }

    public Task SendAsync(string text) =>
        Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);

    public Task SendJsonAsync(object message) => SendAsync(JsonSerializer.Serialize(message));

    /// <summary>The next frame as JSON, or a <see cref="TimeoutException"/>; a close frame gives a WebSocketException.</summary>
    public async Task<JsonElement> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? ChangeStreamExtensions.DefaultTimeout);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == _buffer.Length)
                {
                    Array.Resize(ref _buffer, _buffer.Length * 2); // a frame larger than the buffer so far
                }

                var result = await Socket.ReceiveAsync(_buffer.AsMemory(length), cts.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    CloseStatus = Socket.CloseStatus;
                    throw new WebSocketException($"The server closed the socket: {Socket.CloseStatus} {Socket.CloseStatusDescription}");
                }

                length += result.Count;
                if (result.EndOfMessage)
                {
                    return JsonDocument.Parse(_buffer.AsMemory(0, length), AnyDepth).RootElement.Clone();
                }
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No frame within {timeout ?? ChangeStreamExtensions.DefaultTimeout}.");
        }
    }

    /// <summary>Frames until one of <paramref name="type"/>; others are returned in <paramref name="skipped"/>.</summary>
    public async Task<JsonElement> ReceiveTypeAsync(string type, List<JsonElement>? skipped = null, TimeSpan? timeout = null)
    {
        while (true)
        {
            var frame = await ReceiveAsync(timeout);
            if (frame.GetProperty("type").GetString() == type)
            {
                return frame;
            }

            skipped?.Add(frame);
        }
    }

    public async Task<JsonElement> RequestAsync(object message)
    {
        await SendJsonAsync(message);
        return await ReceiveAsync();
    }

    public async Task SubscribeAsync(string table, object? extra = null)
    {
        var request = new Dictionary<string, object?> { ["type"] = "subscribe", ["id"] = "sub-" + table, ["tables"] = new[] { table } };
        if (extra is not null)
        {
            foreach (var property in JsonSerializer.SerializeToElement(extra).EnumerateObject())
            {
                request[property.Name] = property.Value;
            }
        }

        var ack = await RequestAsync(request);
        ack.GetProperty("type").GetString().Should().Be("subscribed", ack.ToString());
    }

    /// <summary>Waits for the server's close frame and returns its status.</summary>
    public async Task<WebSocketCloseStatus?> ReceiveCloseAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? ChangeStreamExtensions.DefaultTimeout);
        try
        {
            while (true)
            {
                var result = await Socket.ReceiveAsync(_buffer.AsMemory(), cts.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return CloseStatus = Socket.CloseStatus;
                }
            }
        }
        catch (WebSocketException) when (Socket.CloseStatus is not null)
        {
            return CloseStatus = Socket.CloseStatus;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                Socket.Abort();
            }
        }

        Socket.Dispose();
    }
}
