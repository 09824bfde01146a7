using System.Buffers;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One client socket, a thin coordinator: its receive loop hands messages to <see cref="SocketRequests"/> (requests and
/// the subscription table), live changes go to its <see cref="Outbox"/> (or wait in <see cref="SocketReplay"/> while a
/// resume replays), <see cref="SocketAuthorization"/> asks the app's hooks, and its own writer drains the outbox, so a
/// slow client never delays the fan-out or other sockets.
/// </summary>
internal sealed partial class SocketSession : IOutboxOwner
{
    private static readonly TimeSpan CloseHandshakeTimeout = Outbox.CloseHandshakeTimeout;

    private readonly WebSocket _socket;
    private readonly ChangeSource _source;
    private readonly PgChangeWebSocketOptions _options;
    private readonly WebSocketMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Outbox _outbox;
    private RequestRateLimit? _requestRate; // made at the first request: an idle socket holds no rate limiter
    private readonly SocketAuthorization _authorization;
    private readonly SocketReplay _replay;
    private readonly SocketRequests _requests;

    /// <summary>
    /// The socket's parts (outbox, requests, replay, authorization) read what they share through the session instead of
    /// each keeping its own copy: an idle socket holds each reference once (docs/benchmarks.md, idle sockets).
    /// </summary>
    public SocketSession(
        WebSocket socket,
        FrameStream? frames,
        HttpContext httpContext,
        PgChangeRouter router,
        ChangeSource source,
        PgChangeWebSocketOptions options,
        WebSocketMetrics metrics,
        TimeProvider time,
        ILogger logger,
        DateTimeOffset? authenticationExpires = null)
    {
        _socket = socket;
        HttpContext = httpContext;
        _source = source;
        _options = options;
        _metrics = metrics;
        _time = time;
        _logger = logger;
        _outbox = new Outbox(frames ?? (IFrameSink)new SocketFrameSink(socket), this);
        _authorization = new SocketAuthorization(this, authenticationExpires);
        _replay = new SocketReplay(this);
        _requests = new SocketRequests(this, router);
    }

    public HttpContext HttpContext { get; }

    private SocketSnapshot? _snapshots;

    /// <summary>The socket's snapshot sending, made at its first snapshot request (called by the request handling only).</summary>
    public SocketSnapshot Snapshots => _snapshots ??= new SocketSnapshot(this, _outbox, _source, _authorization, _replay, _options, _metrics, _time, _logger);

    /// <summary>The socket's id in the logs: the request's trace identifier, made only when something is logged.</summary>
    public string Id => HttpContext.TraceIdentifier;

    public int SubscriptionCount => _requests.Count;

    public WebSocket Socket => _socket;

    public Outbox Outbox => _outbox;

    public ChangeSource Source => _source;

    public PgChangeWebSocketOptions Options => _options;

    public WebSocketMetrics Metrics => _metrics;

    public TimeProvider Time => _time;

    public ILogger Logger => _logger;

    public SocketAuthorization Authorization => _authorization;

    public SocketReplay Replay => _replay;

    /// <summary>The router's write rounds (read through the requests' router: no field of its own per socket).</summary>
    public DeferredWrites DeferredWrites => _requests.Router.DeferredWrites;

    /// <summary>
    /// Queues a change frame (shared bytes) without writing it yet: the fan-out calls <see cref="StartWriting"/> after
    /// routing what it had in hand, so that changes that came together leave together. Called by the single fan-out
    /// thread only.
    /// </summary>
    public void EnqueueChange(byte[] frame, PgChange change, Subscription subscription)
    {
        // Live changes wait until the replay of what the client missed (or a snapshot) has been queued before them.
        // After a snapshot, a change it already holds is not sent, nor one a resume's replay sent: both are read after
        // TryHold, because the snapshot and the resumed position are set before the hold ends, so a change that is not
        // held sees them (Matches ran before, possibly while the replay still ran).
        if (!_replay.TryHold(frame, change) && !subscription.InSnapshot(change) && !subscription.Resumed(change))
        {
            EnqueueLive(frame, change, startWriting: false);
        }
    }

    /// <summary>Queues a change frame and writes it (a replay's changes, and the live ones held meanwhile).</summary>
    public void EnqueueLive(byte[] frame, PgChange change, bool startWriting = true) => _outbox.EnqueueChange(frame, change.Timestamp, startWriting);

    /// <summary>Tells the socket it may have missed changes (a listener gap): it should reload.</summary>
    public void EnqueueResync(string reason, long? missed)
    {
        if (_requests.Count == 0 && _outbox.PendingChanges == 0)
        {
            return;
        }

        _outbox.EnqueueResync(reason, missed);
    }

    /// <summary>What the app's <c>AuthorizeChange</c> hook lets this socket see of a change (see <see cref="SocketAuthorization"/>).</summary>
    public ChangeAccess AuthorizeChange(PgChange change, ref PgChange? oldRow) => _authorization.AuthorizeChange(change, ref oldRow);

    /// <summary>Closes the socket with <paramref name="status"/> ahead of anything still queued.</summary>
    public void RequestClose(WebSocketCloseStatus status, string description) => _outbox.RequestClose(status, description);

    /// <summary>Writes what is queued (the fan-out calls it once per batch routed).</summary>
    public void StartWriting() => _outbox.StartWriting();

    /// <summary>Queues a control frame (welcome, answers, errors) ahead of change frames.</summary>
    public void EnqueueControl(byte[]? frame, string type) => _outbox.EnqueueControl(frame, type);

    /// <summary>Reads and handles the message that <paramref name="peek"/> saw arrive (read here, not in the receive loop, so that the loop's idle frame keeps no awaiter for it).</summary>
    /// <returns>False when the receive loop ends (the client closed, or sent too much).</returns>
    private async Task<bool> HandleReceivedAsync(ValueWebSocketReceiveResult peek, CancellationToken cancellationToken)
    {
        var message = await MessageReceiver.ReadAsync(this, peek, cancellationToken).ConfigureAwait(false);
        if (message.Kind == ReceivedKind.Closed)
        {
            // Answer the client's close (echoing its code) unless we started the close ourselves.
            RequestClose(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, string.Empty);
            return false;
        }

        try
        {
            if (message.Kind == ReceivedKind.TooBig)
            {
                Log.MessageTooBig(_logger, Id, _options.MaxMessageBytes);
                RequestClose(WebSocketCloseStatus.MessageTooBig, $"message larger than {_options.MaxMessageBytes} bytes");
                await MessageReceiver.DrainUntilClosedAsync(this, message.Buffer!, cancellationToken).ConfigureAwait(false);
                return false;
            }

            if (_outbox.Closing || !TakeToken())
            {
                return true; // closing: requests are no longer answered
            }

            if (message.Type == WebSocketMessageType.Binary)
            {
                EnqueueError(RequestId.None, Protocol.ErrorCodes.UnsupportedData, "Binary frames are not supported: send JSON text frames.");
                return true;
            }

            await _requests.HandleAsync(message.Buffer.AsMemory(0, message.Length), cancellationToken).ConfigureAwait(false);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(message.Buffer!);
        }
    }

    private bool TakeToken()
    {
        _requestRate ??= new RequestRateLimit(_options.MaxMessagesPerSecond);
        var verdict = _requestRate.Take();
        if (verdict == RequestRateVerdict.Allowed)
        {
            return true;
        }

        // Answer the first refusal in a burst; a client that keeps flooding at ten times the limit is closed.
        _metrics.RequestRateLimited();
        if (verdict == RequestRateVerdict.FirstRefusal)
        {
            EnqueueError(RequestId.None, Protocol.ErrorCodes.RateLimited, $"More than {_requestRate.PerSecond} requests per second: this request was ignored.");
        }
        else if (verdict == RequestRateVerdict.Flooding)
        {
            Log.Flooding(_logger, Id);
            RequestClose(WebSocketCloseStatus.PolicyViolation, "too many requests");
        }

        return false;
    }

    /// <summary>Answers a request with an error frame (and logs it at debug level).</summary>
    public void EnqueueError(RequestId id, string code, string message)
    {
        Log.RequestRefused(_logger, Id, code, message);
        EnqueueControl(Frames.Error(id, code, message), Protocol.FrameTypes.Error);
    }
}
