using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PgNotify.Client.Internal;

namespace PgNotify.Client;

/// <summary>
/// A client of PgNotify's WebSocket protocol: one socket that reconnects by itself (backoff with full jitter and a
/// floor), sends its subscriptions again on each new connection, resumes each from its last position when the server
/// keeps a change log, and otherwise tells each subscription to reload (<see cref="PgResyncMessage"/>). A heartbeat
/// notices dead connections. Thread-safe.
/// </summary>
/// <example>
/// <code>
/// await using var client = new PgNotifyClient(new PgNotifyClientOptions { Url = new("wss://example.com/ws/changes/") });
/// await client.ConnectAsync(ct);
/// await foreach (var message in client.SubscribeAsync("profiles", cancellationToken: ct))
/// {
///     if (message is PgChangeMessage change) Console.WriteLine($"{change.Operation} {change.Data}");
/// }
/// </code>
/// </example>
public sealed class PgNotifyClient : IAsyncDisposable
{
    private readonly PgNotifyClientOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SubscriptionRegistry _registry = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private volatile PgNotifyClientState _state;
    private ClientSession? _session;
    private Task _loop = Task.CompletedTask;
    private volatile Exception? _error;
    private volatile bool _disposing;
    private Reconnector? _reconnector;

    /// <summary>Creates a client; nothing connects until <see cref="ConnectAsync"/>.</summary>
    /// <param name="options">The URL, credentials, backoff and heartbeat (checked here).</param>
    /// <param name="loggerFactory">Where the client logs (event ids 3000-3099); default: nowhere.</param>
    /// <param name="timeProvider">The clock for backoff, timeouts and the heartbeat; default: <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentException">An option is out of range (the message says which).</exception>
    public PgNotifyClient(PgNotifyClientOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PgNotify.Client");
    }

    /// <summary>Where the client is: connecting, connected, reconnecting, faulted or disconnected.</summary>
    public PgNotifyClientState State => _state;

    /// <summary>Why the client is <see cref="PgNotifyClientState.Faulted"/>; <see langword="null"/> otherwise.</summary>
    public Exception? Error => _error;

    /// <summary>Whether the current connection's server keeps a change log (subscriptions resume without loss).</summary>
    public bool Lossless => Volatile.Read(ref _session)?.Lossless ?? false;

    /// <summary>Raised (on the client's own task) whenever <see cref="State"/> changes. Handlers must not throw or block.</summary>
    public event Action<PgNotifyClientState>? StateChanged;

    /// <summary>
    /// Opens the connection and returns once the server has welcomed it; from then on the client keeps it open,
    /// reconnecting as needed, until <see cref="DisposeAsync"/>. Failed attempts are retried with backoff.
    /// </summary>
    /// <param name="cancellationToken">Stops trying (the client is then <see cref="PgNotifyClientState.Disconnected"/> again).</param>
    /// <exception cref="PgNotifyException">The server refused the handshake (<c>handshake_refused</c>: 401, 403, 404...), or
    /// <see cref="PgNotifyClientOptions.MaxRetries"/> attempts failed (<c>gave_up</c>). The client is then faulted.</exception>
    /// <exception cref="InvalidOperationException">The client is not disconnected (connect once per client).</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposing, this);
            if (_state != PgNotifyClientState.Disconnected)
            {
                throw new InvalidOperationException($"ConnectAsync was already called (the client is {_state}). Create a new PgNotifyClient to connect again.");
            }

            _reconnector = new Reconnector(_options, _time, _logger);
        }

        SetState(PgNotifyClientState.Connecting);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
        SocketConnection connection;
        try
        {
            connection = await _reconnector.OpenAsync(waitFirst: false, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            SetState(PgNotifyClientState.Disconnected);
            throw;
        }
        catch (PgNotifyException ex)
        {
            Fault(ex);
            throw;
        }

        SetState(PgNotifyClientState.Connected);
        _loop = Task.Run(() => RunAsync(connection), CancellationToken.None);
    }

    /// <summary>
    /// Subscribes to a table's changes. The request is sent when enumeration starts (and again after each reconnect);
    /// the first message is a <see cref="PgSubscribedMessage"/> once the server has made it live. Enumeration ends when
    /// the token is cancelled (<see cref="OperationCanceledException"/>) or the client is disposed; it throws
    /// <see cref="PgNotifyException"/> when the server refuses or ends the subscription, or the client faults. Whatever
    /// the server sends, nothing else is thrown: a frame the client cannot read becomes a <see cref="PgResyncMessage"/>.
    /// </summary>
    /// <param name="table"><c>name</c> (schema public) or <c>schema.name</c>. One subscription per table per client.</param>
    /// <param name="options">Filter, operations and snapshot; default: every change of every row.</param>
    /// <param name="cancellationToken">Ends the subscription (an unsubscribe is sent).</param>
    /// <returns>The subscription's messages, in the order the server sent them.</returns>
    public async IAsyncEnumerable<PgNotifyMessage> SubscribeAsync(string table, PgSubscribeOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (schema, name) = TableNames.Parse(table);
        if (options?.SnapshotLimit is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.SnapshotLimit, "PgSubscribeOptions.SnapshotLimit must be at least 1 (or null for the server's cap).");
        }

        var subscription = new ClientSubscription(schema, name, options ?? new PgSubscribeOptions(), _options.SubscriptionBufferCapacity);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposing, this);
            if (_error is not null)
            {
                throw _error;
            }

            _registry.Add(subscription);
        }

        try
        {
            Volatile.Read(ref _session)?.Subscribe(subscription);
            await foreach (var message in subscription.ReadAllAsync(() => Volatile.Read(ref _session)?.RequestSnapshot(subscription), cancellationToken).ConfigureAwait(false))
            {
                yield return message;
            }
        }
        finally
        {
            _registry.Remove(subscription);
            subscription.Complete();
            Volatile.Read(ref _session)?.Unsubscribe(subscription);
        }
    }

    /// <summary>Closes the connection normally and ends every subscription's enumeration.</summary>
    /// <returns>A task that completes once the connection loop has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposing)
            {
                return;
            }

            _disposing = true;
        }

        if (Volatile.Read(ref _session) is { } session)
        {
            await session.CloseAsync().ConfigureAwait(false); // a normal close (1000): the server answers it, the loop ends
            await Task.WhenAny(_loop, Task.Delay(TimeSpan.FromSeconds(2), TimeProvider.System)).ConfigureAwait(false);
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        foreach (var subscription in _registry.Clear())
        {
            subscription.Complete();
        }

        if (State != PgNotifyClientState.Faulted)
        {
            SetState(PgNotifyClientState.Disconnected);
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(SocketConnection connection)
    {
        var stopping = _stopping.Token;
        while (true)
        {
            var connectedAt = _time.GetTimestamp();
            var session = new ClientSession(connection, _registry, _options, _time, _logger);
            Volatile.Write(ref _session, session);
            SetState(PgNotifyClientState.Connected);
            ClientLog.Connected(_logger, _options.Url!, connection.Lossless);
            foreach (var subscription in _registry.All())
            {
                session.Subscribe(subscription);
            }

            Exception? lost = null;
            try
            {
                await session.RunAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested && !_disposing)
            {
                lost = ex; // the socket failed or was aborted: reconnect
            }
            catch (Exception) when (stopping.IsCancellationRequested || _disposing)
            {
                // Disposing: the socket was closed or aborted on purpose.
            }

            Volatile.Write(ref _session, null);
            if (stopping.IsCancellationRequested || _disposing)
            {
                await connection.CloseAsync(_time).ConfigureAwait(false);
                await connection.DisposeAsync().ConfigureAwait(false);
                return;
            }

            var reason = session.TimedOut ? "heartbeat timeout" : connection.CloseStatus is { } status ? $"closed by the server with {(int)status}" : lost?.Message ?? "closed";
            ClientLog.ConnectionLost(_logger, reason, session.TimedOut ? null : lost);
            await connection.DisposeAsync().ConfigureAwait(false);
            _reconnector!.Ended(connectedAt);
            SetState(PgNotifyClientState.Reconnecting);
            try
            {
                connection = await _reconnector.OpenAsync(waitFirst: true, stopping).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (PgNotifyException ex)
            {
                Fault(ex);
                return;
            }
        }
    }

    private void Fault(Exception error)
    {
        lock (_gate)
        {
            _error = error;
        }

        SetState(PgNotifyClientState.Faulted);
        foreach (var subscription in _registry.Clear())
        {
            subscription.Complete(error);
        }
    }

    private void SetState(PgNotifyClientState state)
    {
        lock (_gate)
        {
            if (_state == state)
            {
                return;
            }

            _state = state;
        }

        try
        {
            StateChanged?.Invoke(state);
        }
        catch (Exception ex)
        {
            ClientLog.StateChangedHandlerFailed(_logger, state, ex); // an app's handler must not stop the client
        }
    }
}
