namespace PgNotify.Client;

/// <summary>Where a <see cref="PgNotifyClient"/> is in its life (<see cref="PgNotifyClient.State"/>).</summary>
public enum PgNotifyClientState
{
    /// <summary>Not connected: before <see cref="PgNotifyClient.ConnectAsync"/>, or after <see cref="PgNotifyClient.DisposeAsync"/>.</summary>
    Disconnected,

    /// <summary>The first connection is being opened by <see cref="PgNotifyClient.ConnectAsync"/>.</summary>
    Connecting,

    /// <summary>Connected: the server's <c>welcome</c> arrived and subscriptions are sent.</summary>
    Connected,

    /// <summary>The connection was lost; the client waits out its backoff delay and connects again.</summary>
    Reconnecting,

    /// <summary>
    /// The client stopped for good: the server refused the handshake (401, 403, an origin it does not allow...) or
    /// <see cref="PgNotifyClientOptions.MaxRetries"/> attempts in a row failed. <see cref="PgNotifyClient.Error"/> says
    /// why, and every subscription ended with that error.
    /// </summary>
    Faulted,
}
