using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PgNotify.Client.Internal;

namespace PgNotify.Client;

/// <summary>
/// A table's rows, kept live: a snapshot subscription's rows by primary key, with every change applied, and a new
/// snapshot after a resync or a reconnect the server could not resume. Made for UI rendering: read
/// <see cref="Rows"/> and re-render on <see cref="Changed"/> (in Blazor: <c>rows.Changed += (_, _) => InvokeAsync(StateHasChanged);</c>).
/// </summary>
/// <typeparam name="TRow">The row type, read with System.Text.Json (or <see cref="JsonElement"/> for the raw rows).</typeparam>
public sealed class LiveRows<TRow> : IAsyncDisposable
{
    private readonly PgNotifyClient _client;
    private readonly string _table;
    private readonly PgSubscribeOptions _options;
    private readonly ILogger _logger;
    private readonly LiveRowSet<TRow> _set;
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private IReadOnlyList<TRow>? _rows;
    private LiveRowsStatus _status;
    private Exception? _error;
    private long _unreadable;
    private bool _resyncPending;
    private Task _pump = Task.CompletedTask;

    /// <summary>Creates live rows of a table; nothing is subscribed until <see cref="StartAsync"/>.</summary>
    /// <param name="client">The client (connected or not) whose socket carries the subscription.</param>
    /// <param name="table"><c>name</c> or <c>schema.name</c>. One subscription per table per client.</param>
    /// <param name="rowType">How rows are read: a source-generated context's type info (<c>MyJsonContext.Default.Profile</c>), reflection-free.</param>
    /// <param name="options">Filter, operations and snapshot limit (<see cref="PgSubscribeOptions.Snapshot"/> is always on).</param>
    /// <param name="loggerFactory">Where rows that cannot be read are reported (event ids 3015, 3016).</param>
    public LiveRows(PgNotifyClient client, string table, JsonTypeInfo<TRow> rowType, PgSubscribeOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(rowType);
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        _client = client;
        _table = table;
        options ??= new PgSubscribeOptions();
        _options = new PgSubscribeOptions { Filter = options.Filter, Operations = options.Operations, Snapshot = true, SnapshotLimit = options.SnapshotLimit };
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PgNotify.Client.LiveRows");
        _set = new LiveRowSet<TRow>(row => row.Deserialize(rowType)!, RowMatcher.Create(options.Filter), ex =>
            ClientLog.RowUnreadable(_logger, table, typeof(TRow).Name, Interlocked.Increment(ref _unreadable), ex));
    }

    /// <summary>The rows now, in no particular order; a new list after each change (safe to keep and enumerate on any thread).</summary>
    public IReadOnlyList<TRow> Rows
    {
        get
        {
            lock (_gate)
            {
                return _rows ??= [.. _set.Values];
            }
        }
    }

    /// <summary>Loading, live, resyncing, faulted or stopped.</summary>
    public LiveRowsStatus Status
    {
        get
        {
            lock (_gate)
            {
                return _status;
            }
        }
    }

    /// <summary>Why the status is <see cref="LiveRowsStatus.Faulted"/>.</summary>
    public Exception? Error
    {
        get
        {
            lock (_gate)
            {
                return _error;
            }
        }
    }

    /// <summary>Whether the last snapshot left rows out (its limit or the server's cap): then <see cref="Rows"/> is not the whole table.</summary>
    public bool Truncated
    {
        get
        {
            lock (_gate)
            {
                return _set.Truncated;
            }
        }
    }

    /// <summary>Rows that could not be read as <typeparamref name="TRow"/> and were left out (each is logged, event id 3015).</summary>
    public long UnreadableRows => Interlocked.Read(ref _unreadable);

    /// <summary>
    /// Raised after the rows or the status changed, on the client's task (not the UI thread: in Blazor, call
    /// <c>InvokeAsync(StateHasChanged)</c>). A handler that throws is logged (3016), not rethrown.
    /// </summary>
    public event EventHandler? Changed;

    /// <summary>Subscribes and returns once the first snapshot is applied.</summary>
    /// <param name="cancellationToken">Stops waiting for the first snapshot (the subscription keeps running until disposed).</param>
    /// <exception cref="PgNotifyException">The server refused the subscription (e.g. <c>unknown_table</c>, <c>forbidden</c>, <c>snapshot_unavailable</c>).</exception>
    public Task StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
            if (_pump.IsCompleted && !_loaded.Task.IsCompleted)
            {
                _pump = Task.Run(PumpAsync, CancellationToken.None);
            }
        }

        return _loaded.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Ends the subscription.</summary>
    /// <returns>A task that completes once the subscription has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _pump.ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task PumpAsync()
    {
        try
        {
            await foreach (var message in _client.SubscribeAsync(_table, _options, _stop.Token).ConfigureAwait(false))
            {
                Apply(message);
            }

            SetEnded(LiveRowsStatus.Stopped, null);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            SetEnded(LiveRowsStatus.Stopped, null);
        }
        catch (Exception ex) when (ex is PgNotifyException or InvalidOperationException or ObjectDisposedException or ArgumentException)
        {
            SetEnded(LiveRowsStatus.Faulted, ex);
        }
    }

    private void Apply(PgNotifyMessage message)
    {
        lock (_gate)
        {
            switch (message)
            {
                case PgSubscribedMessage { Snapshot: true }:
                    _resyncPending = false; // the snapshot that answers the resync (the client asked for it)
                    _set.BeginSnapshot();
                    return; // nothing visible changes until the snapshot ends
                case PgSnapshotMessage snapshot:
                    _set.AddSnapshotRows(snapshot.Rows);
                    return;
                case PgSnapshotEndMessage end:
                    if (!_set.EndSnapshot(end))
                    {
                        return;
                    }

                    _status = _resyncPending ? LiveRowsStatus.Resyncing : LiveRowsStatus.Live; // a snapshot from before the resync
                    _rows = null;
                    _loaded.TrySetResult();
                    break;
                case PgChangeMessage change:
                    _set.Apply(change);
                    if (_set.Staging)
                    {
                        return;
                    }

                    break;
                case PgResyncMessage:
                    _status = LiveRowsStatus.Resyncing;
                    _resyncPending = true;
                    break;
                default:
                    return;
            }

            _rows = null;
        }

        RaiseChanged();
    }

    private void SetEnded(LiveRowsStatus status, Exception? error)
    {
        lock (_gate)
        {
            _status = status;
            _error = error;
        }

        if (error is not null)
        {
            _loaded.TrySetException(error);
        }
        else
        {
            _loaded.TrySetCanceled();
        }

        RaiseChanged();
    }

    private void RaiseChanged()
    {
        try
        {
            Changed?.Invoke(this, EventArgs.Empty);
        }
        catch (Exception ex)
        {
            ClientLog.ChangedHandlerFailed(_logger, _table, ex);
        }
    }
}
