using System.Buffers;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
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

    private volatile bool _ended;

    /// <summary>
    /// Ends the socket at once: the WebSocket's abort ends its pending receive (and, with no close frame sent, the
    /// connection, which cancels the request's token and so whatever the socket was waiting for).
    /// </summary>
    void IOutboxOwner.Abort() => _socket.Abort();

    void IOutboxOwner.AbortAfter(TimeSpan delay) => _ = AbortAfterAsync(delay);

    private async Task AbortAfterAsync(TimeSpan delay)
    {
        await Task.Delay(delay, _time, CancellationToken.None).ConfigureAwait(false);
        if (!_ended)
        {
            // Disposing the upgraded stream does not end a pending read once our close is written: the connection goes.
            _socket.Abort();
            HttpContext.Abort();
        }
    }

    /// <summary>
    /// Runs the socket until either side closes it, then calls <paramref name="ended"/> with <paramref name="endedState"/>.
    /// Never throws for client misbehaviour. Not an async method itself: what an idle socket keeps is
    /// <see cref="RunLoopAsync"/>'s frame alone (the handshake's table list is not in it).
    /// </summary>
    public Task RunAsync(IReadOnlyList<string> initialTables, string? initialSince, CancellationToken requestAborted, Action<SocketSession, object?> ended, object? endedState)
    {
        // The request's token ends the socket's reads, writes and requests: no token source of the socket's own (with the
        // registrations that would tie it to the request, ~190 bytes per idle socket). What ends a socket from inside
        // (a failed write, a close the client does not answer) aborts the WebSocket, which ends its pending receive.
        var token = requestAborted;
        _outbox.WriterToken = token;
        Task initial;
        try
        {
            EnqueueControl(Frames.Welcome(_source.Lossless), Protocol.FrameTypes.Welcome);
            initial = initialTables.Count > 0 || initialSince is not null
                ? _requests.SubscribeInitialAsync(initialTables, initialSince, token)
                : Task.CompletedTask;
        }
        catch (Exception ex)
        {
            initial = Task.FromException(ex);
        }

        return RunLoopAsync(initial, requestAborted, ended, endedState);
    }

    private async Task RunLoopAsync(Task initial, CancellationToken token, Action<SocketSession, object?> ended, object? endedState)
    {
        // Re-authorization runs only where there is something to supervise; it is stopped before the subscriptions are
        // cleared, without stopping the writes.
        var authorizationStop = _authorization.NeedsSupervision ? CancellationTokenSource.CreateLinkedTokenSource(token) : null;
        var authorization = Task.CompletedTask;
        try
        {
            await initial.ConfigureAwait(false);
            initial = Task.CompletedTask;
            if (authorizationStop is not null)
            {
                authorization = _authorization.SuperviseAsync(_requests, authorizationStop.Token);
            }

            // The receive loop. An idle socket waits in WaitAsync, inside this method's frame only.
            while (_socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var peek = await MessageReceiver.WaitAsync(this, token).ConfigureAwait(false);
                if (!await HandleReceivedAsync(peek, token).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException or ConnectionAbortedException)
        {
            Log.SocketEnded(_logger, Id, ex.Message);
        }
        catch (Exception ex)
        {
            // A bug of ours, not the client's: log it and close this socket with 1011; other sockets are unaffected.
            Log.UnexpectedError(_logger, Id, ex);
            RequestClose(WebSocketCloseStatus.InternalServerError, "internal error");
        }

        // Not in a finally (every exception is caught above): a finally with awaits would keep more in the idle frame.
        try
        {
            await EndAsync(authorizationStop, authorization).ConfigureAwait(false);
        }
        finally
        {
            ended(this, endedState);
        }
    }

    /// <summary>Stops the socket's work, lets its writes and close finish (within bounds), and lets go of the socket.</summary>
    private async Task EndAsync(CancellationTokenSource? authorizationStop, Task authorization)
    {
        try
        {
            // The re-authorization task touches the subscriptions: it ends before they are cleared.
            if (authorizationStop is not null)
            {
                await authorizationStop.CancelAsync().ConfigureAwait(false);
                await authorization.ConfigureAwait(false);
                authorizationStop.Dispose();
            }

            await _requests.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            _requests.Clear();
            _outbox.Complete();
            var drained = _outbox.WhenWrittenAsync();
            await Task.WhenAny(drained, Task.Delay(CloseHandshakeTimeout, _time, CancellationToken.None)).ConfigureAwait(false);
            if (_socket.State == WebSocketState.CloseSent)
            {
                // Our close (or the runtime's, e.g. 1007 for invalid UTF-8) is on its way: let the client answer it
                // rather than resetting the connection under it.
                await MessageReceiver.AwaitClientCloseAsync(this, CloseHandshakeTimeout).ConfigureAwait(false);
            }

            _ended = true;
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived or WebSocketState.Connecting || !drained.IsCompleted)
            {
                // Also ends a send stuck on a peer that stopped reading (sends carry no cancellation token).
                _socket.Abort();
                if (!drained.IsCompleted)
                {
                    // A stuck write of our close frame: the WebSocket's abort leaves the connection to the request's end
                    // after a close frame, so the write would never end. The peer has not read for seconds: it goes.
                    HttpContext.Abort();
                }
            }

            await drained.ConfigureAwait(false);
            _requestRate?.Dispose();
            _socket.Dispose();
        }
    }

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
