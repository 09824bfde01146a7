using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;

namespace PgNotify.WebSockets.Internal;

/// <summary>A socket's lifetime: how it starts, runs its receive loop, is ended from inside, and lets go of everything.</summary>
internal sealed partial class SocketSession
{
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
        _outbox.WriterToken = requestAborted;
        Task initial;
        try
        {
            EnqueueControl(Frames.Welcome(_source.Lossless), Protocol.FrameTypes.Welcome);
            initial = initialTables.Count > 0 || initialSince is not null
                ? _requests.SubscribeInitialAsync(initialTables, initialSince, requestAborted)
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
}
