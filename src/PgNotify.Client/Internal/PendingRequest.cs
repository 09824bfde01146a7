namespace PgNotify.Client.Internal;

/// <summary>Why a subscribe request was sent, which decides what its acknowledgment tells the app.</summary>
internal enum RequestKind
{
    /// <summary>The subscription's first request.</summary>
    First,

    /// <summary>Again after a reconnect: resumed with <c>since</c>, or (without it) a resync for the app.</summary>
    Reconnect,

    /// <summary>A new snapshot after a resync.</summary>
    Resnapshot,

    /// <summary>An unsubscribe request.</summary>
    Unsubscribe,
}

/// <summary>A request sent (or about to be) and not answered yet.</summary>
internal sealed record PendingRequest(string Id, byte[] Frame, ClientSubscription Subscription, RequestKind Kind, long? Since, bool Snapshot);
