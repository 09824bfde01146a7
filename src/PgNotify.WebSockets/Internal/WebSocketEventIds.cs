namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The event ids of every log message of PgNotify.WebSockets, in one place (docs/observability.md lists them; a test
/// holds the two together). Ids are stable: a message keeps its id for good. 2001 and 21xx come from the router and the
/// sockets, 22xx from the handshake; new ids go in 2400-2499.
/// </summary>
internal static class WebSocketEventIds
{
    public const int ClosingForShutdown = 2001;

    public const int SocketEnded = 2101;

    public const int SlowConsumerClosed = 2102;

    public const int SlowConsumerLagging = 2103;

    public const int ChangeHookFailed = 2104;

    public const int SubscriptionHookFailed = 2105;

    public const int MessageTooBig = 2106;

    public const int Flooding = 2107;

    public const int RequestRefused = 2108;

    public const int UnexpectedError = 2109;

    public const int RouteFailed = 2110;

    public const int RouterFaulted = 2111;

    public const int AuthenticationExpired = 2112;

    public const int SubscriptionRevoked = 2113;

    public const int RouteToSocketFailed = 2114;

    public const int SnapshotUnavailable = 2130;

    public const int SnapshotFailed = 2131;

    public const int SnapshotTimedOut = 2132;

    /// <summary>A resume's replay from the change log failed in the database; the socket closes with 1011.</summary>
    public const int ReplayFailed = 2133;

    public const int OriginRejected = 2201;

    public const int TooManyConnections = 2202;

    public const int TooManyConnectionsForClient = 2203;
}
