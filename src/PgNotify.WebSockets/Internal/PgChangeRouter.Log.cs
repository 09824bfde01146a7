using Microsoft.Extensions.Logging;

namespace PgNotify.WebSockets.Internal;

internal sealed partial class PgChangeRouter
{
    internal static partial class Log
    {
        [LoggerMessage(EventId = WebSocketEventIds.ClosingForShutdown, Level = LogLevel.Information, Message = "PgNotify is closing {Count} socket(s) with 1001: the server is shutting down.")]
        public static partial void ClosingForShutdown(ILogger logger, int count);

        [LoggerMessage(EventId = WebSocketEventIds.RouteFailed, Level = LogLevel.Error,
            Message = "PgNotify's WebSocket fan-out failed to route a change of {Table}; its subscribers get a resync (server_error) and routing goes on.")]
        public static partial void RouteFailed(ILogger logger, string table, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.RouteToSocketFailed, Level = LogLevel.Error,
            Message = "PgNotify's WebSocket fan-out failed to route a change of {Table} to socket {Socket}; that socket gets a resync (server_error), the others are unaffected.")]
        public static partial void RouteToSocketFailed(ILogger logger, string table, string socket, Exception exception);

        [LoggerMessage(EventId = WebSocketEventIds.RouterFaulted, Level = LogLevel.Critical,
            Message = "PgNotify's WebSocket fan-out loop died (restart {Restarts}); every socket gets a resync (server_error) and the loop restarts in {Delay}. Health is Unhealthy until it runs again.")]
        public static partial void RouterFaulted(ILogger logger, int restarts, TimeSpan delay, Exception exception);
    }
}
