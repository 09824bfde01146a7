using Microsoft.Extensions.Logging;

namespace PgNotify.Client.Internal;

/// <summary>Every log line of PgNotify.Client, with its event id from <see cref="ClientEventIds"/>.</summary>
internal static partial class ClientLog
{
    [LoggerMessage(ClientEventIds.Connected, LogLevel.Information, "Connected to {Url} (lossless: {Lossless}).")]
    public static partial void Connected(ILogger logger, Uri url, bool lossless);

    [LoggerMessage(ClientEventIds.ConnectionLost, LogLevel.Warning, "The connection was lost ({Reason}).")]
    public static partial void ConnectionLost(ILogger logger, string reason, Exception? exception);

    [LoggerMessage(ClientEventIds.Reconnecting, LogLevel.Information, "Reconnecting in {DelayMs} ms (attempt {Attempt}).")]
    public static partial void Reconnecting(ILogger logger, long delayMs, int attempt);

    [LoggerMessage(ClientEventIds.AttemptFailed, LogLevel.Warning, "Connection attempt {Attempt} failed.")]
    public static partial void AttemptFailed(ILogger logger, int attempt, Exception exception);

    [LoggerMessage(ClientEventIds.HandshakeRefused, LogLevel.Error, "The server refused the handshake (HTTP {StatusCode}); not retrying: {Message}")]
    public static partial void HandshakeRefused(ILogger logger, int? statusCode, string message);

    [LoggerMessage(ClientEventIds.GaveUp, LogLevel.Error, "Gave up after {Attempts} failed attempts in a row.")]
    public static partial void GaveUp(ILogger logger, int attempts);

    [LoggerMessage(ClientEventIds.HeartbeatTimeout, LogLevel.Warning, "No frame within {TimeoutMs} ms of a ping: the connection is dropped and opened again.")]
    public static partial void HeartbeatTimeout(ILogger logger, long timeoutMs);

    [LoggerMessage(ClientEventIds.InvalidFrame, LogLevel.Warning, "The server sent a frame the client cannot read ({Error}); subscriptions get a resync ({Count} so far on this connection).")]
    public static partial void InvalidFrame(ILogger logger, string error, long count);

    [LoggerMessage(ClientEventIds.MessageTooBig, LogLevel.Warning, "The server sent a message over MaxMessageBytes ({MaxBytes}) or a binary one; it was skipped and subscriptions get a resync.")]
    public static partial void MessageTooBig(ILogger logger, int maxBytes);

    [LoggerMessage(ClientEventIds.SubscriptionRefused, LogLevel.Warning, "The server refused the subscription to {Table}: {Code} ({Message}).")]
    public static partial void SubscriptionRefused(ILogger logger, string table, string code, string? message);

    [LoggerMessage(ClientEventIds.SubscriptionEnded, LogLevel.Warning, "The server ended the subscription to {Table} ({Reason}).")]
    public static partial void SubscriptionEnded(ILogger logger, string table, string reason);

    [LoggerMessage(ClientEventIds.Resync, LogLevel.Information, "Resync ({Reason}, missed {Missed}).")]
    public static partial void Resync(ILogger logger, string reason, long? missed);

    [LoggerMessage(ClientEventIds.Overflow, LogLevel.Warning, "The app did not read the subscription to {Table} fast enough: messages are dropped until it catches up, then a client_overflow resync is delivered.")]
    public static partial void Overflow(ILogger logger, string table);

    [LoggerMessage(ClientEventIds.RateLimited, LogLevel.Warning, "The server rate-limited the client's requests; unanswered ones are sent again after a pause.")]
    public static partial void RateLimited(ILogger logger);

    [LoggerMessage(ClientEventIds.FrameFailed, LogLevel.Error, "Handling a server frame failed; subscriptions get a resync.")]
    public static partial void FrameFailed(ILogger logger, Exception exception);

    [LoggerMessage(ClientEventIds.RowUnreadable, LogLevel.Warning, "LiveRows of {Table}: a row could not be read as {RowType} and is left out ({Count} so far).")]
    public static partial void RowUnreadable(ILogger logger, string table, string rowType, long count, Exception exception);

    [LoggerMessage(ClientEventIds.ChangedHandlerFailed, LogLevel.Error, "LiveRows of {Table}: a Changed handler threw.")]
    public static partial void ChangedHandlerFailed(ILogger logger, string table, Exception exception);

    [LoggerMessage(ClientEventIds.ServerError, LogLevel.Warning, "The server sent an error: {Code} ({Message}).")]
    public static partial void ServerError(ILogger logger, string? code, string? message);

    [LoggerMessage(ClientEventIds.StateChangedHandlerFailed, LogLevel.Error, "A StateChanged handler threw (state {State}); the client goes on.")]
    public static partial void StateChangedHandlerFailed(ILogger logger, PgNotifyClientState state, Exception exception);
}
