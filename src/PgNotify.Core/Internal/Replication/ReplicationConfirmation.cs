using Npgsql.Replication;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;

namespace PgNotify.Internal;

/// <summary>
/// What one replication stream confirms to its slot. After a transaction's changes are in the feed, its end is
/// confirmed (<see cref="Handled"/>). While the stream is idle between transactions, the end of WAL the server says it
/// has sent (its keepalives, which Npgsql keeps as <see cref="ReplicationConnection.LastReceivedLsn"/>) is confirmed as
/// well (<see cref="RunWhileIdleAsync"/>): that WAL held nothing published, or it was handed over already. Without it
/// the slot would stay at the last delivered commit: WAL of unpublished tables would be kept for nothing, and a fast
/// stop of PostgreSQL would wait for ever, since the walsender waits for confirmation of everything it sent (the
/// shutdown checkpoint included) before it exits.
/// </summary>
/// <remarks>
/// Safe because the stream is read one message at a time: while the dispatcher is between transactions, Npgsql can
/// have read at most one message it has not handed over yet, and that message opens a transaction (its position is
/// that transaction's first change, below its commit, so the slot sends the transaction again) or is a keepalive.
/// A turn counter, odd while a message is handled, tells the idle check that no message was handed over meanwhile.
/// </remarks>
internal sealed class ReplicationConfirmation(LogicalReplicationConnection connection, ulong start)
{
    private readonly Lock _lock = new();
    private ulong _confirmed = start;
    private long _turns;
    private volatile bool _inTransaction;

    /// <summary>Called by the dispatcher before it handles <paramref name="message"/>.</summary>
    public void Handling(PgOutputReplicationMessage message)
    {
        Interlocked.Increment(ref _turns);
        if (message is BeginMessage)
        {
            _inTransaction = true;
        }
    }

    /// <summary>Called by the dispatcher after it handled <paramref name="message"/>; <paramref name="commitEnd"/> is set once a transaction is in the feed.</summary>
    public void Handled(PgOutputReplicationMessage message, ulong? commitEnd)
    {
        if (commitEnd is { } lsn)
        {
            Confirm(lsn);
        }

        if (message is CommitMessage)
        {
            _inTransaction = false;
        }

        Interlocked.Increment(ref _turns);
    }

    /// <summary>
    /// Every <paramref name="interval"/>, while the dispatcher waits between transactions, confirms the end of WAL the
    /// server has sent and pushes it at once. Ends with <paramref name="cancellationToken"/>; a failed status update
    /// is left to the stream, which sees the same connection fail.
    /// </summary>
    public async Task RunWhileIdleAsync(TimeSpan interval, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                if (TryConfirmIdle())
                {
                    await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or ObjectDisposedException
                                       or Npgsql.NpgsqlException or IOException)
        {
            // Stopped, or the connection is gone: the stream reconnects, and the next stream confirms again.
        }
    }

    /// <summary>Confirms the server's sent position if the dispatcher is idle; true if that moved the confirmation.</summary>
    private bool TryConfirmIdle()
    {
        var before = Volatile.Read(ref _turns);
        if ((before & 1) != 0 || _inTransaction)
        {
            return false;
        }

        var received = (ulong)connection.LastReceivedLsn;
        return Volatile.Read(ref _turns) == before && Confirm(received);
    }

    private bool Confirm(ulong lsn)
    {
        lock (_lock)
        {
            if (lsn <= _confirmed)
            {
                return false; // never backwards: two threads confirm
            }

            _confirmed = lsn;
            connection.SetReplicationStatus(new NpgsqlLogSequenceNumber(lsn));
            return true;
        }
    }
}
