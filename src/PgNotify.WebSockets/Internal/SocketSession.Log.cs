using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

internal sealed partial class SocketSession
{
    internal static partial class Log
    {
        [LoggerMessage(EventId = WebSocketEventIds.SocketEnded, Level = LogLevel.Debug, Message = "PgNotify socket {Socket} ended: {Reason}")]
        public static partial void SocketEnded(ILogger logger, string socket, string reason);

        [LoggerMessage(EventId = WebSocketEventIds.SlowConsumerClosed, Level = LogLevel.Warning,
            Message = "PgNotify socket {Socket} is not reading: its send queue ({Capacity} frames or {MaxBytes} bytes) is full, so it is closed with 1008 (SlowConsumerPolicy = Close).")]
        public static partial void SlowConsumerClosed(ILogger logger, string socket, int capacity, int maxBytes);

        [LoggerMessage(EventId = WebSocketEventIds.SlowConsumerLagging, Level = LogLevel.Warning,
            Message = "PgNotify socket {Socket} is not reading: its send queue ({Capacity} frames or {MaxBytes} bytes) is full; changes are dropped for it until it catches up, then it gets a resync frame. (Logged once per socket; the pgnotify.websocket.changes_dropped metric counts every drop.)")]
        public static partial void SlowConsumerLagging(ILogger logger, string socket, int capacity, int maxBytes);

        [LoggerMessage(EventId = WebSocketEventIds.ChangeHookFailed, Level = LogLevel.Error,
            Message = "PgNotify's AuthorizeChange hook threw for socket {Socket} and table {Table}; the change is withheld from this socket only.")]
        public static partial void ChangeHookFailed(ILogger logger, string socket, PgTableName table, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.SubscriptionHookFailed, Level = LogLevel.Error,
            Message = "PgNotify's AuthorizeSubscription hook threw for socket {Socket} and table {Table}; the subscription is refused.")]
        public static partial void SubscriptionHookFailed(ILogger logger, string socket, PgTableName table, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.MessageTooBig, Level = LogLevel.Information, Message = "PgNotify socket {Socket} sent a message larger than {Limit} bytes; closing it with 1009.")]
        public static partial void MessageTooBig(ILogger logger, string socket, int limit);

        [LoggerMessage(EventId = WebSocketEventIds.Flooding, Level = LogLevel.Information, Message = "PgNotify socket {Socket} keeps flooding requests; closing it with 1008.")]
        public static partial void Flooding(ILogger logger, string socket);

        [LoggerMessage(EventId = WebSocketEventIds.UnexpectedError, Level = LogLevel.Error, Message = "PgNotify socket {Socket} failed unexpectedly; closing it with 1011.")]
        public static partial void UnexpectedError(ILogger logger, string socket, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.AuthenticationExpired, Level = LogLevel.Information,
            Message = "PgNotify socket {Socket}: the authentication it was opened with expired at {Expires}; closing it with 4001 so the client reconnects with fresh credentials.")]
        public static partial void AuthenticationExpired(ILogger logger, string socket, DateTimeOffset expires);

        [LoggerMessage(EventId = WebSocketEventIds.SubscriptionRevoked, Level = LogLevel.Information,
            Message = "PgNotify socket {Socket}: AuthorizeSubscription no longer allows table {Table}; it is unsubscribed (reason forbidden).")]
        public static partial void SubscriptionRevoked(ILogger logger, string socket, PgTableName table);

        [LoggerMessage(EventId = WebSocketEventIds.RequestRefused, Level = LogLevel.Debug, Message = "PgNotify socket {Socket}: request refused ({Code}): {Message}")]
        public static partial void RequestRefused(ILogger logger, string socket, string code, string message);
    
        [LoggerMessage(EventId = WebSocketEventIds.SnapshotUnavailable, Level = LogLevel.Information,
            Message = "PgNotify socket {Socket}: no snapshot of table {Table}: {Reason} The socket gets a snapshot_unavailable error; its subscription stands.")]
        public static partial void SnapshotUnavailable(ILogger logger, string socket, PgTableName table, string reason);

        [LoggerMessage(EventId = WebSocketEventIds.SnapshotFailed, Level = LogLevel.Warning,
            Message = "PgNotify socket {Socket}: the snapshot of table {Table} failed in the database; the socket gets a snapshot_unavailable error and may ask again.")]
        public static partial void SnapshotFailed(ILogger logger, string socket, PgTableName table, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.SnapshotTimedOut, Level = LogLevel.Information,
            Message = "PgNotify socket {Socket}: the snapshot of table {Table} took longer than SnapshotTimeout ({Timeout}); it is abandoned and the slot goes to the next socket.")]
        public static partial void SnapshotTimedOut(ILogger logger, string socket, PgTableName table, TimeSpan timeout);

        [LoggerMessage(EventId = WebSocketEventIds.ReplayFailed, Level = LogLevel.Warning,
            Message = "PgNotify socket {Socket}: the replay from the change log failed in the database; closing it with 1011 so that its client resumes again from the last change it received.")]
        public static partial void ReplayFailed(ILogger logger, string socket, Exception exception);
    }
}
