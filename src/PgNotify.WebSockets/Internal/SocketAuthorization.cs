using System.Net.WebSockets;
using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// One socket's authorization: the app's hooks asked with a new, immutable context per call (the fan-out and a
/// resume's replay ask at the same time), and its authorization over time: subscriptions are authorized again every
/// <see cref="PgChangeWebSocketOptions.ReauthorizeInterval"/>, and the socket closes when the handshake's
/// authentication expires. Holds no mutable state of its own.
/// </summary>
internal sealed class SocketAuthorization(SocketSession session, DateTimeOffset? authenticationExpires)
{
    /// <summary>
    /// Authorizes one change for this socket through the app's hook. An UPDATE that passes is asked about again for its
    /// old row; refused, the frame goes without <c>old</c>. A throwing hook withholds the change (or its old row).
    /// </summary>
    /// <param name="change">The change.</param>
    /// <param name="oldRow">The UPDATE's old row as a change of its own, made once per change and shared by sockets.</param>
    public ChangeAccess AuthorizeChange(PgChange change, ref PgChange? oldRow)
    {
        if (session.Options.AuthorizeChange is not { } hook)
        {
            return ChangeAccess.Full;
        }

        if (!Authorize(hook, change, isOldRow: false))
        {
            return ChangeAccess.Denied;
        }

        if (change.Operation != PgChangeOperation.Update || change.Old is not { } old)
        {
            return ChangeAccess.Full;
        }

        oldRow ??= new PgChange(change.Table, change.Operation, old, null, change.TransactionId, change.Sequence, change.Timestamp, change.Position, change.ReceivedAt);
        return Authorize(hook, oldRow, isOldRow: true) ? ChangeAccess.Full : ChangeAccess.WithoutOld;
    }

    private bool Authorize(Func<PgChangeAuthorizationContext, bool> hook, PgChange change, bool isOldRow)
    {
        try
        {
            return hook(new PgChangeAuthorizationContext(session.HttpContext, change, isOldRow));
        }
        catch (Exception ex)
        {
            SocketSession.Log.ChangeHookFailed(session.Logger, session.Id, change.Table, ex);
            return false;
        }
    }

    /// <summary>Asks <c>AuthorizeSubscription</c> about one table; no hook allows it, a throwing hook refuses it.</summary>
    public async Task<bool> AuthorizeSubscriptionAsync(PgTableName table, IReadOnlyCollection<PgChangeOperation> operations)
    {
        if (session.Options.AuthorizeSubscription is not { } authorize)
        {
            return true;
        }

        try
        {
            return await authorize(new PgSubscriptionAuthorizationContext(session.HttpContext, table, operations)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            SocketSession.Log.SubscriptionHookFailed(session.Logger, session.Id, table, ex);
            return false;
        }
    }

    private TimeSpan? ReauthorizeInterval =>
        session.Options.AuthorizeSubscription is not null && session.Options.ReauthorizeInterval > TimeSpan.Zero ? session.Options.ReauthorizeInterval : null;

    /// <summary>True when the socket has something to supervise: periodic re-authorization, or an authentication expiry.</summary>
    public bool NeedsSupervision => ReauthorizeInterval is not null || authenticationExpires is not null;

    /// <summary>
    /// Runs until the socket ends: closes it at the authentication's expiry, and has <paramref name="requests"/>
    /// re-authorize its subscriptions periodically.
    /// </summary>
    public async Task SuperviseAsync(SocketRequests requests, CancellationToken cancellationToken)
    {
        var interval = ReauthorizeInterval;
        if (!NeedsSupervision)
        {
            return;
        }

        var nextReauthorization = interval is { } first ? session.Time.GetUtcNow() + first : DateTimeOffset.MaxValue;
        try
        {
            while (true)
            {
                var now = session.Time.GetUtcNow();
                if (authenticationExpires is { } expires && now >= expires)
                {
                    SocketSession.Log.AuthenticationExpired(session.Logger, session.Id, expires);
                    session.RequestClose((WebSocketCloseStatus)Protocol.CloseCodes.AuthenticationExpired, "authentication expired");
                    return;
                }

                if (now >= nextReauthorization)
                {
                    await requests.ReauthorizeAsync(cancellationToken).ConfigureAwait(false);
                    nextReauthorization = now + interval!.Value;
                    continue;
                }

                var wake = authenticationExpires is { } at && at < nextReauthorization ? at : nextReauthorization;
                await Task.Delay(wake - now, session.Time, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The socket ended.
        }
        catch (Exception ex)
        {
            // A bug of ours: this socket closes with 1011, the others are unaffected.
            SocketSession.Log.UnexpectedError(session.Logger, session.Id, ex);
            session.RequestClose(WebSocketCloseStatus.InternalServerError, "internal error");
        }
    }
}
