namespace PgNotify.WebSockets;

/// <summary>
/// Settings of the WebSocket endpoint, bound from the configuration section <c>PgNotify:WebSockets</c>; the hooks are
/// set in code.
/// </summary>
public sealed class PgChangeWebSocketOptions
{
    /// <summary>The configuration section the options bind from: <c>PgNotify:WebSockets</c>.</summary>
    public const string SectionName = "PgNotify:WebSockets";

    /// <summary>
    /// The tables clients may subscribe to, as in <see cref="PgNotifyOptions.Tables"/>. Default: empty, which exposes
    /// every table in <see cref="PgNotifyOptions.Tables"/>. Anything else is answered <c>unknown_table</c>, the same
    /// whether or not it exists.
    /// </summary>
    public IList<string> ExposedTables { get; } = [];

    /// <summary>
    /// Origins (<c>scheme://host[:port]</c>) allowed to open a socket from a browser, besides the host's own origin.
    /// <c>*</c> allows any. Requests without an <c>Origin</c> header (non-browser clients) are always allowed; any other
    /// origin gets 403, which stops cross-site WebSocket hijacking. Default: empty (same origin only).
    /// </summary>
    public IList<string> AllowedOrigins { get; } = [];

    /// <summary>Open sockets allowed per app instance; the handshake beyond it gets 503. Default: 10,000 sockets.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// Open sockets allowed per client, so that one client cannot take every connection of <see cref="MaxConnections"/>.
    /// A client is the authenticated user (its <c>NameIdentifier</c> claim, else <c>Identity.Name</c>) or, for anonymous
    /// sockets, the remote IP address (<c>HttpContext.Connection.RemoteIpAddress</c>, which is the client's address
    /// behind a proxy only when the app calls <c>UseForwardedHeaders</c> first). The handshake beyond it gets 429 with
    /// <c>Retry-After: 5</c>. Default: 1,000 sockets.
    /// </summary>
    public int MaxConnectionsPerClient { get; set; } = 1_000;

    /// <summary>The largest inbound message, counted across fragments; larger ones close the socket with 1009. Default: 16,384 bytes.</summary>
    public int MaxMessageBytes { get; set; } = 16 * 1024;

    /// <summary>Tables one socket may subscribe to at once. Default: 100 tables.</summary>
    public int MaxSubscriptionsPerSocket { get; set; } = 100;

    /// <summary>
    /// Requests a socket may send per second (a <c>System.Threading.RateLimiting</c> token bucket of this size, refilled
    /// continuously). Requests beyond it are ignored; the first of a burst is answered with a <c>rate_limited</c> error. A client whose requests keep being
    /// refused (more than ten times the limit in a row, with no token refilled in between) is closed with 1008.
    /// Default: 20 requests per second.
    /// </summary>
    public int MaxMessagesPerSecond { get; set; } = 20;

    /// <summary>
    /// Change frames one socket may have queued before <see cref="SlowConsumerPolicy"/> applies, whichever of this and
    /// <see cref="SendQueueMaxBytes"/> is reached first. Frames are shared by the sockets they go to, so the queue itself
    /// costs about 32 bytes per frame. Default: 20,000 frames, so that a burst of 40,000 small rows in a second reaches a
    /// socket that reads as fast as it can whole.
    /// </summary>
    public int SendQueueCapacity { get; set; } = 20_000;

    /// <summary>
    /// Bytes of change frames one socket may have queued before <see cref="SlowConsumerPolicy"/> applies, whichever of
    /// this and <see cref="SendQueueCapacity"/> is reached first. A frame larger than this still goes to a socket whose
    /// queue is empty, so that one big row is never undeliverable. Default: 8 MiB (8,388,608 bytes): 20,000 frames of
    /// small rows (about 200 bytes each) fit, as do 1,000 frames of up to 8 KB.
    /// </summary>
    public int SendQueueMaxBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>What happens to a socket whose send queue is full. Default: <see cref="PgSlowConsumerPolicy.Resync"/>.</summary>
    public PgSlowConsumerPolicy SlowConsumerPolicy { get; set; } = PgSlowConsumerPolicy.Resync;

    /// <summary>
    /// Trades latency for CPU on busy sockets. A socket whose previous write started less than this long ago waits until
    /// the next write round (one timer for all sockets, once per this delay) instead of writing at once, and sends
    /// everything queued meanwhile in one write: fewer <c>send</c> calls and wake-ups per change when a socket gets many
    /// changes a second. A socket that has been quiet for this long still writes at once, so sparse traffic gains no
    /// latency; a busy socket's frames wait up to this long. Nothing is dropped or reordered. At most 1 second.
    /// Default: <see cref="TimeSpan.Zero"/> (off: every frame is written as soon as it is queued). docs/benchmarks.md
    /// measures what 5 ms buys at 2,000 changes/s per socket.
    /// </summary>
    public TimeSpan WriteCoalescingDelay { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Whether a socket's frames are written straight to its connection's socket, from the thread that writes them,
    /// instead of through Kestrel's output pipe, whose I/O thread would send them after a wake-up: less server
    /// CPU per delivery when each change goes to many sockets (docs/benchmarks.md). Used only where it is safe:
    /// WebSockets over HTTP/1.1 on Kestrel's socket transport, without TLS; everywhere else frames go through the pipe
    /// as they would with this off. A socket switches once its client has sent its first bytes (the client has then
    /// read the handshake's response); until then its first frame waits, and asks with a ping (at most 2 seconds, then
    /// the socket stays on the pipe). Turn it off if a connection middleware of your own changes the bytes Kestrel sends
    /// (compression, encryption other than Kestrel's TLS): it would be bypassed. Default: <see langword="true"/>.
    /// </summary>
    public bool DirectSocketWrites { get; set; } = true;

    /// <summary>How often the server pings each socket at the WebSocket level. Default: 30 seconds.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the server waits for the pong before it aborts a dead peer. Default: 20 seconds.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long a <c>subscribe</c> may wait for the listener to be connected to PostgreSQL before it is answered
    /// <c>unavailable</c>. Default: 10 seconds.
    /// </summary>
    public TimeSpan SubscribeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The most rows one table's snapshot sends (<c>subscribe</c> with <c>"snapshot": true</c>); a request's
    /// <c>limit</c> can only lower it. Rows left out are reported with <c>"truncated": true</c>. Default: 10,000 rows.
    /// </summary>
    public int MaxSnapshotRows { get; set; } = 10_000;

    /// <summary>
    /// How long one snapshot may take once its turn has come (Core's <c>MaxConcurrentSnapshots</c>), reading included:
    /// a snapshot holds a database transaction while it streams, so a client that does not read it in time gets a
    /// <c>snapshot_unavailable</c> error instead, and the slot goes to the next socket. Waiting for the turn does not
    /// count. Default: 30 seconds.
    /// </summary>
    public TimeSpan SnapshotTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often each socket asks <see cref="AuthorizeSubscription"/> again about the tables it is subscribed to. A table
    /// no longer allowed is unsubscribed with an <c>unsubscribed</c> frame whose <c>reason</c> is <c>forbidden</c>.
    /// <see cref="TimeSpan.Zero"/> turns it off. Independently, a socket whose handshake authentication has an expiry
    /// (<c>AuthenticationProperties.ExpiresUtc</c>) is closed with 4001 when it expires. Default: 5 minutes.
    /// </summary>
    public TimeSpan ReauthorizeInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Decides whether the socket's user may subscribe to a table (called once per table of each subscribe request, and
    /// again every <see cref="ReauthorizeInterval"/> for the tables the socket is subscribed to).
    /// Returning <see langword="false"/> answers <c>forbidden</c>. An exception is logged and counts as a refusal.
    /// Default: <see langword="null"/> (every exposed table is allowed).
    /// </summary>
    public Func<PgSubscriptionAuthorizationContext, ValueTask<bool>>? AuthorizeSubscription { get; set; }

    /// <summary>
    /// Decides whether one change may be sent to one socket, for example so a user sees only their own rows. Called on
    /// the fan-out path for every matching change and socket, and once more for an UPDATE's old row
    /// (<see cref="PgChangeAuthorizationContext.IsOldRow"/>; refused, the frame goes without <c>old</c>): keep it fast
    /// and synchronous. An exception is logged and
    /// withholds that change from that socket only; other sockets are unaffected. Default: <see langword="null"/> (all).
    /// </summary>
    public Func<PgChangeAuthorizationContext, bool>? AuthorizeChange { get; set; }
}
