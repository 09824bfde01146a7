namespace PgNotify.Client.Internal;

/// <summary>Every event id PgNotify.Client logs with (3000-3099), in one place; docs/observability.md lists them.</summary>
internal static class ClientEventIds
{
    public const int Connected = 3000;
    public const int ConnectionLost = 3001;
    public const int Reconnecting = 3002;
    public const int AttemptFailed = 3003;
    public const int HandshakeRefused = 3004;
    public const int GaveUp = 3005;
    public const int HeartbeatTimeout = 3006;
    public const int InvalidFrame = 3007;
    public const int MessageTooBig = 3008;
    public const int SubscriptionRefused = 3009;
    public const int SubscriptionEnded = 3010;
    public const int Resync = 3011;
    public const int Overflow = 3012;
    public const int RateLimited = 3013;
    public const int FrameFailed = 3014;
    public const int RowUnreadable = 3015;
    public const int ChangedHandlerFailed = 3016;
    public const int ServerError = 3017;
    public const int StateChangedHandlerFailed = 3018;
}
