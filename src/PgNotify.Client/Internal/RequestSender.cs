using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Threading.Channels;

namespace PgNotify.Client.Internal;

/// <summary>
/// The requests of one connection: what was asked and not answered yet, sent in order and paced below the server's
/// rate limit; sent again after a <c>rate_limited</c> answer, or after a delay when the server was <c>unavailable</c>.
/// </summary>
internal sealed class RequestSender(SocketConnection connection, PgNotifyClientOptions options, TimeProvider time)
{
    private readonly Channel<PendingRequest> _outbox = Channel.CreateUnbounded<PendingRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, PendingRequest> _pending = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ClientSubscription, bool> _requested = new();
    private readonly RequestPacer _pacer = new(time, options.MaxRequestsPerSecond);
    private long _nextId;
    private int _unavailable;

    /// <summary>Asks for a subscription this connection has not asked for yet; after a reconnect, resuming it where it can.</summary>
    public void Subscribe(ClientSubscription subscription)
    {
        if (subscription.Ended || !_requested.TryAdd(subscription, true))
        {
            return;
        }

        var since = connection.Lossless && subscription.WasLive ? subscription.LastPosition : null;
        Enqueue(subscription, subscription.WasLive ? RequestKind.Reconnect : RequestKind.First, since, subscription.Options.Snapshot && since is null);
    }

    /// <summary>A snapshot subscription asks for a new snapshot (at most one request of it waiting).</summary>
    public void RequestSnapshot(ClientSubscription subscription)
    {
        if (subscription.Options.Snapshot && !subscription.Ended
            && !_pending.Values.Any(p => p.Subscription == subscription && p.Kind == RequestKind.Resnapshot))
        {
            Enqueue(subscription, RequestKind.Resnapshot, null, snapshot: true);
        }
    }

    /// <summary>Subscribes afresh, without <c>since</c> (the server could not resume from it).</summary>
    public void Restart(ClientSubscription subscription) =>
        Enqueue(subscription, RequestKind.Reconnect, null, subscription.Options.Snapshot);

    public void Unsubscribe(ClientSubscription subscription)
    {
        if (_requested.TryRemove(subscription, out _))
        {
            var id = NextId("u");
            _outbox.Writer.TryWrite(new PendingRequest(id, Requests.Unsubscribe(id, subscription), subscription, RequestKind.Unsubscribe, null, false));
        }
    }

    /// <summary>The request an answer is for, no longer pending.</summary>
    public PendingRequest? Take(string? id) => id is not null && _pending.TryRemove(id, out var request) ? request : null;

    public void Answered() => _unavailable = 0;

    /// <summary>The server could not make the subscription live in time: ask again after a backoff delay.</summary>
    public async Task RetryLaterAsync(PendingRequest request, CancellationToken cancellationToken)
    {
        var delay = Backoff.Delay(_unavailable++, options.MinReconnectDelay, options.MaxReconnectDelay, Random.Shared.NextDouble());
        try
        {
            await Task.Delay(delay, time, cancellationToken).ConfigureAwait(false);
            Enqueue(request.Subscription, request.Kind, request.Since, request.Snapshot);
        }
        catch (OperationCanceledException)
        {
            // The connection ended; the next one asks again.
        }
    }

    /// <summary>The server ignored a burst of requests without saying which: pause, then send every unanswered one again, in order.</summary>
    public void RateLimited()
    {
        _pacer.Pause(TimeSpan.FromSeconds(1) + Backoff.Delay(0, options.MinReconnectDelay, options.MaxReconnectDelay, Random.Shared.NextDouble()));
        foreach (var request in _pending.Values.OrderBy(r => r.Id.Length).ThenBy(r => r.Id, StringComparer.Ordinal))
        {
            _outbox.Writer.TryWrite(request);
        }
    }

    /// <summary>Sends until cancelled; a failed send aborts the connection (the client then reconnects).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var request in _outbox.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (request.Kind != RequestKind.Unsubscribe && (request.Subscription.Ended || !_pending.ContainsKey(request.Id)))
                {
                    _pending.TryRemove(request.Id, out _);
                    continue; // the app stopped reading, or the request was answered meanwhile
                }

                await _pacer.WaitAsync(cancellationToken).ConfigureAwait(false);
                await connection.SendAsync(request.Frame, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The connection ended.
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            connection.Abort();
        }
    }

    public async ValueTask SendPingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await connection.SendAsync(Requests.Ping(NextId("p")), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            // A dead connection: the heartbeat's timeout drops it.
        }
    }

    private void Enqueue(ClientSubscription subscription, RequestKind kind, long? since, bool snapshot)
    {
        var id = NextId("r");
        var request = new PendingRequest(id, Requests.Subscribe(id, subscription, since, snapshot), subscription, kind, since, snapshot);
        _pending[id] = request;
        _outbox.Writer.TryWrite(request);
    }

    private string NextId(string prefix) => prefix + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
}
