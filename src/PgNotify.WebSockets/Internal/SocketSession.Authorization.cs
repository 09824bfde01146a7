using System.Net.WebSockets;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The socket's authorization over time: its subscriptions are authorized again every
/// <see cref="PgChangeWebSocketOptions.ReauthorizeInterval"/>, and it closes when the handshake's authentication expires.
/// </summary>
internal sealed partial class SocketSession
{
    /// <summary>Runs until the socket ends: closes it at the authentication's expiry, and re-authorizes periodically.</summary>
    private async Task SuperviseAuthorizationAsync(CancellationToken cancellationToken)
    {
        var interval = _options.AuthorizeSubscription is not null && _options.ReauthorizeInterval > TimeSpan.Zero ? _options.ReauthorizeInterval : (TimeSpan?)null;
        if (interval is null && _authenticationExpires is null)
        {
            return;
        }

        var nextReauthorization = interval is { } first ? _time.GetUtcNow() + first : DateTimeOffset.MaxValue;
        try
        {
            while (true)
            {
                var now = _time.GetUtcNow();
                if (_authenticationExpires is { } expires && now >= expires)
                {
                    Log.AuthenticationExpired(_logger, Id, expires);
                    RequestClose((WebSocketCloseStatus)Protocol.CloseCodes.AuthenticationExpired, "authentication expired");
                    return;
                }

                if (now >= nextReauthorization)
                {
                    await ReauthorizeAsync(cancellationToken).ConfigureAwait(false);
                    nextReauthorization = now + interval!.Value;
                    continue;
                }

                var wake = _authenticationExpires is { } at && at < nextReauthorization ? at : nextReauthorization;
                await Task.Delay(wake - now, _time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The socket ended.
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket closes with 1011, the others are unaffected.
            Log.UnexpectedError(_logger, Id, ex);
            RequestClose(WebSocketCloseStatus.InternalServerError, "internal error");
        }
    }

    /// <summary>Asks <c>AuthorizeSubscription</c> again about every subscribed table; unsubscribes those it refuses.</summary>
    private async Task ReauthorizeAsync(CancellationToken cancellationToken)
    {
        if (_options.AuthorizeSubscription is not { } authorize)
        {
            return;
        }

        // Requests wait meanwhile: the subscriptions are the receive loop's, and only one side changes them at a time.
        await _requestGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var revoked = new List<PgTableName>();
            foreach (var subscription in _subscriptions.Values.ToList())
            {
                bool allowed;
                try
                {
                    allowed = await authorize(new PgSubscriptionAuthorizationContext(HttpContext, subscription.Table, subscription.Operations)).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Log.SubscriptionHookFailed(_logger, Id, subscription.Table, ex);
                    allowed = false;
                }

                if (!allowed)
                {
                    Log.SubscriptionRevoked(_logger, Id, subscription.Table);
                    revoked.Add(subscription.Table);
                }
            }

            if (revoked.Count > 0)
            {
                Unsubscribe(RequestId.None, revoked, acknowledge: false);
                EnqueueControl(Frames.TablesAck(Protocol.FrameTypes.Unsubscribed, RequestId.None, revoked, Protocol.UnsubscribeReasons.Forbidden), Protocol.FrameTypes.Unsubscribed);
            }
        }
        finally
        {
            _requestGate.Release();
        }
    }
}
