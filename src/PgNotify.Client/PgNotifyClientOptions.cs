using System.Net.WebSockets;

namespace PgNotify.Client;

/// <summary>How a <see cref="PgNotifyClient"/> connects, reconnects and checks its connection.</summary>
public sealed class PgNotifyClientOptions
{
    /// <summary>The socket's URL, e.g. <c>wss://example.com/ws/changes/</c> (<c>http</c> and <c>https</c> are turned into <c>ws</c> and <c>wss</c>). Required.</summary>
    public Uri? Url { get; set; }

    /// <summary>
    /// Request headers sent with every connection attempt, e.g. <c>Authorization: Bearer ...</c> for a worker service.
    /// Browsers (Blazor WebAssembly) cannot set headers: there the page's cookies authenticate. Never put a token in
    /// the URL (URLs end up in proxy logs).
    /// </summary>
    public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Called before every connection attempt with that attempt's socket options: set a fresh credential here
    /// (<c>options.SetRequestHeader("Authorization", "Bearer " + await GetTokenAsync(ct))</c>), cookies, a proxy or
    /// client certificates. An exception fails the attempt (it is retried with backoff, and thrown by
    /// <see cref="PgNotifyClient.ConnectAsync"/> on the first one). Default: none.
    /// </summary>
    public Func<ClientWebSocketOptions, CancellationToken, ValueTask>? ConfigureConnection { get; set; }

    /// <summary>The reconnect delay's floor, from which it doubles after each failure. Default: 500 ms.</summary>
    public TimeSpan MinReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The reconnect delay's cap. Default: 30 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Failed attempts in a row after which the client gives up (state <see cref="PgNotifyClientState.Faulted"/>,
    /// error <c>gave_up</c>). Default: <see cref="int.MaxValue"/> (never).
    /// </summary>
    public int MaxRetries { get; set; } = int.MaxValue;

    /// <summary>
    /// How long a connection must stay up for the attempt count to start over, so that a server that accepts and then
    /// closes at once is retried less and less often rather than in a loop. Default: 5 s.
    /// </summary>
    public TimeSpan MinUptime { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest an attempt may take, from opening the socket to the server's <c>welcome</c>. Default: 15 s.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// After this long without any frame from the server, the client sends a <c>ping</c>. Default: 25 s.
    /// <see cref="Timeout.InfiniteTimeSpan"/> turns the heartbeat off.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>
    /// With no frame this long after a ping, the connection is taken as dead (a black-holed network, a sleeping NAT):
    /// it is aborted and the client reconnects. Default: 10 s.
    /// </summary>
    public TimeSpan HeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The largest frame the client reads, in bytes. A larger one is skipped and every subscription gets a
    /// <see cref="PgResyncMessage"/> (<c>message_too_big</c>). Default: 16 MiB.
    /// </summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Messages queued per subscription for the app to read. Past it, messages are dropped until the app has read the
    /// queue, then a <see cref="PgResyncMessage"/> (<c>client_overflow</c>) says how many. Default: 10,000.
    /// </summary>
    public int SubscriptionBufferCapacity { get; set; } = 10_000;

    /// <summary>Requests (subscribe, unsubscribe, ping) sent per second at most: below the server's limit (20 by default). Default: 10.</summary>
    public int MaxRequestsPerSecond { get; set; } = 10;

    /// <summary>Checks the options, with messages that say what to change.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (Url is null || !Url.IsAbsoluteUri || Url.Scheme is not ("ws" or "wss" or "http" or "https"))
        {
            throw new ArgumentException("PgNotifyClientOptions.Url must be an absolute ws://, wss://, http:// or https:// URL, e.g. wss://example.com/ws/changes/.", nameof(Url));
        }

        Positive(MinReconnectDelay, nameof(MinReconnectDelay));
        Positive(ConnectTimeout, nameof(ConnectTimeout));
        if (MaxReconnectDelay < MinReconnectDelay)
        {
            throw new ArgumentException("PgNotifyClientOptions.MaxReconnectDelay must be at least MinReconnectDelay.", nameof(MaxReconnectDelay));
        }

        if (MinUptime < TimeSpan.Zero)
        {
            throw new ArgumentException("PgNotifyClientOptions.MinUptime must not be negative.", nameof(MinUptime));
        }

        if (HeartbeatInterval != Timeout.InfiniteTimeSpan)
        {
            Positive(HeartbeatInterval, nameof(HeartbeatInterval));
            Positive(HeartbeatTimeout, nameof(HeartbeatTimeout));
        }

        if (MaxRetries < 0 || MaxMessageBytes < 1024 || SubscriptionBufferCapacity < 1 || MaxRequestsPerSecond < 1)
        {
            throw new ArgumentException("PgNotifyClientOptions: MaxRetries must be 0 or more, MaxMessageBytes at least 1024, SubscriptionBufferCapacity and MaxRequestsPerSecond at least 1.");
        }
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            throw new ArgumentException($"PgNotifyClientOptions.{name} must be positive (it is {value}).", name);
        }
    }
}
