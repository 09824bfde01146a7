namespace PgNotify.WebSockets.Internal;

/// <summary>The <c>code</c> of error frames (docs/protocol.md, "Error codes").</summary>
internal static class ErrorCodes
{
    public const string InvalidJson = "invalid_json";
    public const string InvalidMessage = "invalid_message";
    public const string UnknownType = "unknown_type";
    public const string UnknownTable = "unknown_table";
    public const string InvalidPosition = "invalid_position";
    public const string Forbidden = "forbidden";
    public const string TooManySubscriptions = "too_many_subscriptions";
    public const string RateLimited = "rate_limited";
    public const string Unavailable = "unavailable";
    public const string UnsupportedData = "unsupported_data";
}

/// <summary>The <c>reason</c> of resync frames (docs/protocol.md, "resync").</summary>
internal static class ResyncReasons
{
    public const string ListenerReconnected = "listener_reconnected";
    public const string ListenerOverflow = "listener_overflow";
    public const string PositionExpired = "position_expired";
    public const string SlowConsumer = "slow_consumer";

    /// <summary>The server failed to route a change (a bug, logged as 2110 or 2111): reload what you show.</summary>
    public const string ServerError = "server_error";
}

/// <summary>The <c>reason</c> of <c>unsubscribed</c> frames the server sends on its own (docs/protocol.md).</summary>
internal static class UnsubscribeReasons
{
    /// <summary>Re-authorization (<c>ReauthorizeInterval</c>) refused a subscription the socket had.</summary>
    public const string Forbidden = "forbidden";
}

/// <summary>Close codes PgNotify sends besides the standard ones (docs/protocol.md, "Close codes").</summary>
internal static class CloseCodes
{
    /// <summary>The authentication the socket was opened with has expired: reconnect with fresh credentials.</summary>
    public const int AuthenticationExpired = 4001;
}
