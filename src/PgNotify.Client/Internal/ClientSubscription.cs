using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace PgNotify.Client.Internal;

/// <summary>
/// One subscription: what it asks for, its place in the stream (position, acknowledged), and the queue of messages the
/// app reads. The queue is bounded: past its capacity the writer drops, and once the reader has emptied it, it reads a
/// <c>client_overflow</c> resync with the count. Its one lock guards the queue's count and the overflow.
/// </summary>
internal sealed class ClientSubscription(string schema, string name, PgSubscribeOptions options, int capacity)
{
    private readonly Channel<PgNotifyMessage> _queue = Channel.CreateUnbounded<PgNotifyMessage>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _gate = new();
    private int _queued;
    private bool _overflowing;
    private long _missed;

    public string Schema { get; } = schema;

    public string Name { get; } = name;

    /// <summary>What messages call the table.</summary>
    public string Table { get; } = TableNames.Display(schema, name);

    public string Key { get; } = TableNames.Qualify(schema, name);

    public PgSubscribeOptions Options { get; } = options;

    // Read and written only by the client's connection loop (its receive loop and reconnects, one after the other).

    /// <summary>Whether the server acknowledged it on some connection before: a later one resumes or resyncs.</summary>
    public bool WasLive { get; set; }

    /// <summary>The last position delivered for the table (lossless delivery), to resume from.</summary>
    public long? LastPosition { get; set; }

    /// <summary>Set by the app's thread when it stops reading; the loop then sends no more requests for it.</summary>
    public bool Ended => _queue.Reader.Completion.IsCompleted;

    /// <summary>Queues a message for the app; drops it (and counts) while the queue is full, until the app has emptied it.</summary>
    /// <returns><see langword="false"/> when it was dropped.</returns>
    public bool Deliver(PgNotifyMessage message)
    {
        lock (_gate)
        {
            if (_overflowing || _queued >= capacity)
            {
                _overflowing = true;
                if (message is PgChangeMessage or PgSnapshotMessage or PgSnapshotEndMessage)
                {
                    _missed++;
                }

                return false;
            }

            if (!_queue.Writer.TryWrite(message))
            {
                return false; // ended
            }

            _queued++;
            return true;
        }
    }

    /// <summary>Ends the app's enumeration: normally, or with the error its enumerator throws.</summary>
    public void Complete(Exception? error = null) => _queue.Writer.TryComplete(error);

    /// <summary>
    /// The app's side. <paramref name="onOverflowReported"/> runs when a <c>client_overflow</c> resync is handed out
    /// (the client then asks a snapshot subscription for a new snapshot).
    /// </summary>
    public async IAsyncEnumerable<PgNotifyMessage> ReadAllAsync(Action onOverflowReported, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            while (reader.TryRead(out var message))
            {
                PgResyncMessage? overflow = null;
                lock (_gate)
                {
                    _queued--;
                    if (_queued == 0 && _overflowing)
                    {
                        overflow = new PgResyncMessage(Table, ClientResyncReasons.ClientOverflow, _missed);
                        _overflowing = false;
                        _missed = 0;
                    }
                }

                yield return message;
                if (overflow is not null)
                {
                    onOverflowReported();
                    yield return overflow;
                }
            }
        }
    }
}
