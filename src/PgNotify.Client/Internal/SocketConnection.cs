using System.Buffers;
using System.Net;
using System.Net.WebSockets;

namespace PgNotify.Client.Internal;

/// <summary>
/// One WebSocket to the server: opening it (up to the <c>welcome</c> frame), reading whole messages within a size
/// limit, and sending one frame at a time. Knows nothing about subscriptions.
/// </summary>
internal sealed class SocketConnection : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly int _maxMessageBytes;
    private byte[] _buffer = new byte[16 * 1024];

    private SocketConnection(ClientWebSocket socket, int maxMessageBytes)
    {
        _socket = socket;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Whether the server keeps a change log (the welcome's <c>lossless</c>).</summary>
    public bool Lossless { get; private set; }

    /// <summary>The outcome of <see cref="ReceiveAsync"/>.</summary>
    public enum Received
    {
        Message,
        TooBig,
        Closed,
    }

    /// <summary>Connects and waits for the welcome.</summary>
    /// <exception cref="PgNotifyException">The server refused the handshake with a status that retrying will not change (<c>handshake_refused</c>).</exception>
    /// <exception cref="Exception">Any other failure: worth retrying.</exception>
    public static async Task<SocketConnection> OpenAsync(PgNotifyClientOptions options, TimeProvider time, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        var connection = new SocketConnection(socket, options.MaxMessageBytes);
        try
        {
            if (!OperatingSystem.IsBrowser())
            {
                socket.Options.CollectHttpResponseDetails = true;
                foreach (var (name, value) in options.Headers)
                {
                    socket.Options.SetRequestHeader(name, value);
                }
            }

            using var timeout = new CancellationTokenSource(options.ConnectTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            if (options.ConfigureConnection is { } configure)
            {
                await configure(socket.Options, linked.Token).ConfigureAwait(false);
            }

            try
            {
                await socket.ConnectAsync(SocketUri(options.Url!), linked.Token).ConfigureAwait(false);
            }
            catch (WebSocketException ex) when (IsRefusal(socket.HttpStatusCode))
            {
                var status = (int)socket.HttpStatusCode;
                throw new PgNotifyException(
                    "handshake_refused",
                    $"The server refused the WebSocket handshake with HTTP {status} ({socket.HttpStatusCode}): "
                    + (status is 401 or 403 ? "check the credentials (ConfigureConnection, Headers) and that the server allows this origin." : "check the URL."),
                    status,
                    ex);
            }

            var received = await connection.ReceiveAsync(linked.Token).ConfigureAwait(false);
            var welcome = received.Result == Received.Message ? ServerFrameParser.Parse(received.Message.Span, out _) : null;
            if (welcome?.Type != Protocol.FrameTypes.Welcome)
            {
                throw new WebSocketException(WebSocketError.InvalidState, "The server's first frame was not a welcome.");
            }

            connection.Lossless = welcome.Lossless;
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Reads one whole message. A message over the limit is read to its end and dropped (<see cref="Received.TooBig"/>).</summary>
    public async Task<(Received Result, ReadOnlyMemory<byte> Message)> ReceiveAsync(CancellationToken cancellationToken)
    {
        var length = 0;
        var tooBig = false;
        while (true)
        {
            if (length == _buffer.Length)
            {
                if (_buffer.Length >= _maxMessageBytes)
                {
                    tooBig = true;
                    length = 0; // keep reading to the end of the message, into the same buffer
                }
                else
                {
                    Array.Resize(ref _buffer, Math.Min(_maxMessageBytes, _buffer.Length * 2));
                }
            }

            var result = await _socket.ReceiveAsync(_buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                return (Received.Closed, default);
            }

            length += result.Count;
            if (result.EndOfMessage)
            {
                if (tooBig || result.MessageType == WebSocketMessageType.Binary)
                {
                    return (Received.TooBig, default);
                }

                var message = _buffer.AsMemory(0, length);
                if (_buffer.Length > 64 * 1024)
                {
                    _buffer = new byte[16 * 1024]; // the large buffer goes with the message it holds
                }

                return (Received.Message, message);
            }
        }
    }

    /// <summary>Sends one text frame; frames from several threads go one at a time.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> utf8, CancellationToken cancellationToken)
    {
        await _sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(utf8, WebSocketMessageType.Text, true, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>The close status the server sent, if it closed.</summary>
    public WebSocketCloseStatus? CloseStatus => _socket.CloseStatus;

    /// <summary>Drops the connection at once (a dead peer gets no close handshake).</summary>
    public void Abort() => _socket.Abort();

    /// <summary>Closes normally (1000), waiting a short while for the server's answer.</summary>
    public async Task CloseAsync(TimeProvider time)
    {
        if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2), time);
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Closing a connection that is already going: nothing more to do.
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        _sendLock.Dispose();
        return ValueTask.CompletedTask;
    }

    private static bool IsRefusal(HttpStatusCode status) =>
        (int)status is >= 400 and < 500 and not 408 and not 429;

    private static Uri SocketUri(Uri url) => url.Scheme switch
    {
        "http" => new UriBuilder(url) { Scheme = "ws" }.Uri,
        "https" => new UriBuilder(url) { Scheme = "wss" }.Uri,
        _ => url,
    };
}
