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
    private readonly RequestRateLimit _requestRate;
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
        _requestRate = new RequestRateLimit(options.MaxMessagesPerSecond);
        _authorization = new SocketAuthorization(this, options, time, logger, authenticationExpires);
        _replay = new SocketReplay(this, _outbox, source, _authorization, options, time);
        var snapshots = new SocketSnapshot(this, _outbox, source, _authorization, _replay, options, metrics, time, logger);
        _requests = new SocketRequests(this, router, source, _authorization, _replay, snapshots, options, metrics, logger);
    }

    public HttpContext HttpContext { get; }

    public string Id => HttpContext.TraceIdentifier;

    public int SubscriptionCount => _requests.Count;

    /// <summary>Runs the socket until either side closes it. Never throws for client misbehaviour.</summary>
    public async Task RunAsync(IReadOnlyList<string> initialTables, string? initialSince, CancellationToken requestAborted)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, _aborted.Token);
        _outbox.WriterToken = linked.Token;
        using var authorizationStop = CancellationTokenSource.CreateLinkedTokenSource(linked.Token);
        var authorization = Task.CompletedTask;
        try
        {
            EnqueueControl(Frames.Welcome(_source.Lossless), Protocol.FrameTypes.Welcome);
            if (initialTables.Count > 0 || initialSince is not null)
            {
                await _requests.SubscribeInitialAsync(initialTables, initialSince, linked.Token).ConfigureAwait(false);
            }

            authorization = _authorization.SuperviseAsync(_requests, authorizationStop.Token);
            await ReceiveLoopAsync(linked.Token).ConfigureAwait(false);
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
            await authorizationStop.CancelAsync().ConfigureAwait(false);
            await authorization.ConfigureAwait(false);
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
            _aborted.Dispose();
            _requestRate.Dispose();
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
        // After a snapshot, a change it already holds is not sent (read after TryHold: the snapshot is set before the
        // hold ends, so a change that is not held sees it).
        if (!_replay.TryHold(frame, change) && !subscription.InSnapshot(change))
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

    private async Task ReceiveLoopAsync(CancellationToken cancellationToken)
    {
        while (_socket.State is WebSocketState.Open or WebSocketState.CloseSent)
        {
            var message = await _receiver.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (message.Kind == ReceivedKind.Closed)
            {
                // Answer the client's close (echoing its code) unless we started the close ourselves.
                RequestClose(_socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, string.Empty);
                return;
            }

            try
            {
                if (message.Kind == ReceivedKind.TooBig)
                {
                    Log.MessageTooBig(_logger, Id, _options.MaxMessageBytes);
                    RequestClose(WebSocketCloseStatus.MessageTooBig, $"message larger than {_options.MaxMessageBytes} bytes");
                    await _receiver.DrainUntilClosedAsync(message.Buffer!, cancellationToken).ConfigureAwait(false);
                    return;
                }

                if (_outbox.Closing || !TakeToken())
                {
                    continue; // closing: requests are no longer answered
                }

                if (message.Type == WebSocketMessageType.Binary)
                {
                    EnqueueError(RequestId.None, Protocol.ErrorCodes.UnsupportedData, "Binary frames are not supported: send JSON text frames.");
                    continue;
                }

                await _requests.HandleAsync(message.Buffer.AsMemory(0, message.Length), cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(message.Buffer!);
            }
        }
    }

    private bool TakeToken()
    {
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
