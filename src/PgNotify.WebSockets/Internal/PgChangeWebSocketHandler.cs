using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace PgNotify.WebSockets.Internal;

/// <summary>The endpoint: checks the handshake (WebSocket, origin, connection limit), accepts, and runs the socket.</summary>
internal sealed partial class PgChangeWebSocketHandler
{
    private readonly PgChangeRouter _router;
    private readonly ChangeSource _source;
    private readonly PgChangeWebSocketOptions _options;
    private readonly WebSocketMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ILogger _sessionLogger;
    private int _connections;
    private readonly ClientConnectionLimit _clients;
    private readonly Action<SocketSession, object?> _socketEnded;

    public PgChangeWebSocketHandler(
        PgChangeRouter router,
        ChangeSource source,
        IOptions<PgChangeWebSocketOptions> options,
        WebSocketMetrics metrics,
        TimeProvider time,
        ILoggerFactory loggerFactory)
    {
        _router = router;
        _source = source;
        _options = options.Value;
        _metrics = metrics;
        _time = time;
        _logger = loggerFactory.CreateLogger<PgChangeWebSocketHandler>();
        _sessionLogger = loggerFactory.CreateLogger("PgNotify.WebSockets.Socket");
        _socketEnded = SocketEnded;
        _clients = new ClientConnectionLimit(_options.MaxConnectionsPerClient);
    }

    /// <summary>
    /// Checks the handshake and runs the socket. Not an async method: once the socket is accepted (at once, over
    /// HTTP/1.1), the task returned is the session's own, so an idle socket keeps no frame of this method.
    /// </summary>
    public Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            return context.Response.WriteAsync("This endpoint accepts WebSocket connections only (see PgNotify's docs/protocol.md).", context.RequestAborted);
        }

        if (!IsOriginAllowed(context.Request))
        {
            Log.OriginRejected(_logger, context.Request.Headers.Origin.ToString());
            _metrics.HandshakeRejected("origin");
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            return Task.CompletedTask;
        }

        if (Interlocked.Increment(ref _connections) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _connections);
            Log.TooManyConnections(_logger, _options.MaxConnections);
            _metrics.HandshakeRejected("connection_limit");
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = "5";
            return Task.CompletedTask;
        }

        var key = ClientConnectionLimit.Key(context);
        if (_clients.TryAdd(key) is not { } client)
        {
            Interlocked.Decrement(ref _connections);
            Log.TooManyConnectionsForClient(_logger, key.StartsWith("user:", StringComparison.Ordinal) ? "an authenticated user" : key, _options.MaxConnectionsPerClient);
            _metrics.HandshakeRejected("client_connection_limit");
            context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
            context.Response.Headers.RetryAfter = "5";
            return Task.CompletedTask;
        }

        Task<(WebSocket Socket, FrameStream? Frames)> accept;
        try
        {
            accept = AcceptAsync(context);
        }
        catch
        {
            ReleaseConnection(client);
            throw;
        }

        return accept.IsCompletedSuccessfully ? Run(context, accept.Result, client) : AcceptThenRunAsync(context, accept, client);
    }

    private async Task AcceptThenRunAsync(HttpContext context, Task<(WebSocket Socket, FrameStream? Frames)> accept, ClientConnectionLimit.Entry client)
    {
        (WebSocket Socket, FrameStream? Frames) accepted;
        try
        {
            accepted = await accept.ConfigureAwait(false);
        }
        catch
        {
            ReleaseConnection(client);
            throw;
        }

        await Run(context, accepted, client).ConfigureAwait(false);
    }

    /// <summary>Runs an accepted socket; its session calls <see cref="SocketEnded"/> when it ends.</summary>
    private Task Run(HttpContext context, (WebSocket Socket, FrameStream? Frames) accepted, ClientConnectionLimit.Entry client)
    {
        SocketSession session;
        try
        {
            // The handshake's authentication expiry (cookie or bearer token), if the app authenticated the request.
            var expires = context.Features.Get<IAuthenticateResultFeature>()?.AuthenticateResult?.Properties?.ExpiresUtc;
            session = new SocketSession(accepted.Socket, accepted.Frames, context, _router, _source, _options, _metrics, _time, _sessionLogger, expires);
            _router.Register(session);
        }
        catch
        {
            accepted.Socket.Dispose();
            ReleaseConnection(client);
            throw;
        }

        _metrics.SocketOpened();

        // Read from the raw query string (Request.Query would keep a parsed copy on the context for the socket's life).
        var query = context.Request.QueryString.Value;
        return session.RunAsync(
            QueryValue(query, "tables").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            QueryValue(query, "since") is { Length: > 0 } since ? since : null,
            context.RequestAborted,
            _socketEnded,
            client);
    }

    private void SocketEnded(SocketSession session, object? client)
    {
        try
        {
            _router.Unregister(session);
            _metrics.SocketClosed();
        }
        finally
        {
            ReleaseConnection((ClientConnectionLimit.Entry)client!);
        }
    }

    private void ReleaseConnection(ClientConnectionLimit.Entry client)
    {
        _clients.Remove(client);
        Interlocked.Decrement(ref _connections);
    }

    /// <summary>
    /// The values of query parameter <paramref name="name"/> (case-insensitive), decoded as <c>Request.Query</c> decodes
    /// them and joined as <c>Request.Query[name].ToString()</c> joins a repeated name's values; "" if absent.
    /// </summary>
    internal static string QueryValue(string? query, string name)
    {
        string? single = null;
        List<string>? several = null;
        foreach (var pair in new QueryStringEnumerable(query))
        {
            if (!pair.DecodeName().Span.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var value = pair.DecodeValue().ToString();
            if (single is null)
            {
                single = value;
            }
            else
            {
                (several ??= [single]).Add(value);
            }
        }

        // StringValues joins as Request.Query[name].ToString() does (empty values are left out).
        return several is not null ? new StringValues([.. several]).ToString() : single ?? "";
    }

    /// <summary>
    /// Accepts the WebSocket. Over HTTP/1.1 the handshake is answered here, so that the session writes through a
    /// <see cref="FrameStream"/> and can send several queued frames with one write; elsewhere (HTTP/2, test servers)
    /// ASP.NET Core's own accept is used and frames are sent one by one.
    /// </summary>
    private async Task<(WebSocket Socket, FrameStream? Frames)> AcceptAsync(HttpContext context)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true } || !TryCreateAcceptKey(context.Request, out var accept))
        {
            var accepted = await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext
            {
                KeepAliveInterval = _options.KeepAliveInterval,
                KeepAliveTimeout = _options.KeepAliveTimeout,
            }).ConfigureAwait(false);
            return (accepted, null);
        }

        // What ASP.NET Core's WebSocket middleware does for HTTP/1.1 (RFC 6455 section 4.2.2): no subprotocol and no
        // extension is negotiated, the server answers 101 with the accept key, and the request timeout no longer applies.
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = accept;
        var stream = await upgrade.UpgradeAsync().ConfigureAwait(false);
        var frames = new FrameStream(stream);
        var socket = WebSocket.CreateFromStream(frames, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = _options.KeepAliveInterval,
            KeepAliveTimeout = _options.KeepAliveTimeout,
        });
        frames.EndConnectionOnAbort(context, socket);
        if (_options.DirectSocketWrites
            && !context.Request.IsHttps
            && context.Features.Get<ITlsConnectionFeature>() is null
            && context.Features.Get<IConnectionSocketFeature>()?.Socket is { SocketType: SocketType.Stream } direct)
        {
            frames.WriteDirectTo(direct, _metrics);
        }

        return (socket, frames);
    }

    private static bool TryCreateAcceptKey(HttpRequest request, out string accept)
    {
        accept = "";
        var key = request.Headers.SecWebSocketKey.ToString().Trim();
        Span<byte> nonce = stackalloc byte[16];
        if (!HttpMethods.IsGet(request.Method)
            || request.Headers.SecWebSocketVersion.ToString() != "13"
            || !Convert.TryFromBase64String(key, nonce, out var written) || written != 16)
        {
            return false;
        }

        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"), hash);
        accept = Convert.ToBase64String(hash);
        return true;
    }

    private bool IsOriginAllowed(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        if (string.IsNullOrEmpty(origin))
        {
            return true; // not a browser: origins protect browsers' cookies, and other clients can send any header
        }

        if (string.Equals(origin, $"{request.Scheme}://{request.Host.Value}", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        foreach (var allowed in _options.AllowedOrigins)
        {
            if (allowed == "*" || string.Equals(allowed.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = WebSocketEventIds.OriginRejected, Level = LogLevel.Warning,
            Message = "PgNotify refused a WebSocket from origin '{Origin}' (403). Add it to PgNotify:WebSockets:AllowedOrigins if it is yours.")]
        public static partial void OriginRejected(ILogger logger, string origin);

        [LoggerMessage(EventId = WebSocketEventIds.TooManyConnections, Level = LogLevel.Warning,
            Message = "PgNotify refused a WebSocket: {Limit} are open already (503). Raise PgNotify:WebSockets:MaxConnections or add instances.")]
        public static partial void TooManyConnections(ILogger logger, int limit);

        [LoggerMessage(EventId = WebSocketEventIds.TooManyConnectionsForClient, Level = LogLevel.Warning,
            Message = "PgNotify refused a WebSocket: {Client} has {Limit} open already (429). Raise PgNotify:WebSockets:MaxConnectionsPerClient if that is expected (many users behind one address without forwarded headers?).")]
        public static partial void TooManyConnectionsForClient(ILogger logger, string client, int limit);
    }
}
