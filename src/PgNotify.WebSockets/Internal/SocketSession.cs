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
internal sealed partial class SocketSession
{
    private static readonly TimeSpan CloseHandshakeTimeout = Outbox.CloseHandshakeTimeout;

    private readonly WebSocket _socket;
    private readonly ChangeSource _source;
    private readonly PgChangeWebSocketOptions _options;
    private readonly WebSocketMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _aborted = new();
    private readonly Outbox _outbox;
    private readonly MessageReceiver _receiver;
    private RequestRateLimit? _requestRate; // made at the first request: an idle socket holds no rate limiter
    private readonly SocketAuthorization _authorization;
    private readonly SocketReplay _replay;
    private readonly SocketRequests _requests;

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
        _receiver = new MessageReceiver(socket, options.MaxMessageBytes, time);
        _outbox = new Outbox(new SocketFrameSink(socket, frames), options, metrics, time, logger, httpContext.TraceIdentifier, _aborted);
        _authorization = new SocketAuthorization(this, options, time, logger, authenticationExpires);
        _replay = new SocketReplay(this, _outbox, source, _authorization, options, time);
        _requests = new SocketRequests(this, router, source, _authorization, _replay, options, metrics, logger);
    }

    public HttpContext HttpContext { get; }

    private SocketSnapshot? _snapshots;

    /// <summary>The socket's snapshot sending, made at its first snapshot request (called by the request handling only).</summary>
    public SocketSnapshot Snapshots => _snapshots ??= new SocketSnapshot(this, _outbox, _source, _authorization, _replay, _options, _metrics, _time, _logger);

    public string Id => HttpContext.TraceIdentifier;

    public int SubscriptionCount => _requests.Count;

    /// <summary>Runs the socket until either side closes it. Never throws for client misbehaviour.</summary>
    public async Task RunAsync(IReadOnlyList<string> initialTables, string? initialSince, CancellationToken requestAborted)
    {
        // One token ends the socket's reads and writes: the request's abort cancels it through a registration (not a
        // linked token source, which an idle socket would hold on top), and so does the writer when it fails.
        var token = _aborted.Token;
        var requestRegistration = requestAborted.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _aborted);
        _outbox.WriterToken = token;

        // Re-authorization runs only where there is something to supervise; it is stopped before the subscriptions are
        // cleared, without stopping the writes.
        var authorizationStop = _authorization.NeedsSupervision ? CancellationTokenSource.CreateLinkedTokenSource(token) : null;
        var authorization = Task.CompletedTask;
        try
        {
            EnqueueControl(Frames.Welcome(_source.Lossless), Protocol.FrameTypes.Welcome);
            if (initialTables.Count > 0 || initialSince is not null)
            {
                await _requests.SubscribeInitialAsync(initialTables, initialSince, token).ConfigureAwait(false);
            }

            // Not needed any more: this frame lasts as long as the socket.
            initialTables = [];
            initialSince = null;

            if (authorizationStop is not null)
            {
                authorization = _authorization.SuperviseAsync(_requests, authorizationStop.Token);
            }

            // The receive loop. An idle socket waits in WaitAsync, inside this method's frame only.
            while (_socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var peek = await _receiver.WaitAsync(token).ConfigureAwait(false);
                var message = await _receiver.ReadAsync(peek, token).ConfigureAwait(false);
                if (!await HandleReceivedAsync(message, token).ConfigureAwait(false))
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException or ConnectionAbortedException)
        {
            Log.SocketEnded(_logger, Id, ex.Message);
        }
        catch (Exception ex)
        {
            // A bug of ours, not the client's: log it and close this socket with 1011; other sockets are unaffected.
            Log.UnexpectedError(_logger, Id, ex);
            RequestClose(WebSocketCloseStatus.InternalServerError, "internal error");
        }
        finally
        {
            // The re-authorization task touches the subscriptions: it ends before they are cleared.
            if (authorizationStop is not null)
            {
                await authorizationStop.CancelAsync().ConfigureAwait(false);
                await authorization.ConfigureAwait(false);
                authorizationStop.Dispose();
            }

            await _requests.StopAsync().ConfigureAwait(false);
            _requests.Clear();
            _outbox.Complete();
            var drained = _outbox.WhenWrittenAsync();
            await Task.WhenAny(drained, Task.Delay(CloseHandshakeTimeout, _time, CancellationToken.None)).ConfigureAwait(false);
            if (_socket.State == WebSocketState.CloseSent)
            {
                // Our close (or the runtime's, e.g. 1007 for invalid UTF-8) is on its way: let the client answer it
                // rather than resetting the connection under it.
                await _receiver.AwaitClientCloseAsync(CloseHandshakeTimeout).ConfigureAwait(false);
            }

            await _aborted.CancelAsync().ConfigureAwait(false);
            if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived or WebSocketState.Connecting || !drained.IsCompleted)
            {
                // Also ends a send stuck on a peer that stopped reading (sends carry no cancellation token).
                _socket.Abort();
            }

            await drained.ConfigureAwait(false);
            await requestRegistration.DisposeAsync().ConfigureAwait(false); // a request abort in flight ends first
            _aborted.Dispose();
            _requestRate?.Dispose();
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

    /// <summary>Handles one received message.</summary>
    /// <returns>False when the receive loop ends (the client closed, or sent too much).</returns>
    private async Task<bool> HandleReceivedAsync(Received message, CancellationToken cancellationToken)
    {
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
                await _receiver.DrainUntilClosedAsync(message.Buffer!, cancellationToken).ConfigureAwait(false);
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
