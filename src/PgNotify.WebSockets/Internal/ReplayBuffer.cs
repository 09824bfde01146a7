namespace PgNotify.WebSockets.Internal;

/// <summary>
/// While a resume replays what the client missed from the change log, the live changes routed to the socket wait here,
/// so that they go out after the replay. Bounded: past the bounds, changes are dropped and the end of the replay says
/// so (the socket then gets a resync). The fan-out thread holds changes; the socket's request handling begins and ends.
/// </summary>
internal sealed class ReplayBuffer(int maxFrames, long maxBytes)
{
    private readonly Lock _gate = new();
    private readonly List<(byte[] Frame, PgChange Change)> _held = [];
    private long _heldBytes;
    private bool _active;
    private bool _overflow;

    /// <summary>From now on, live changes are held until <see cref="End"/>.</summary>
    public void Begin()
    {
        lock (_gate)
        {
            _active = true;
        }
    }

    /// <summary>Holds a live change while a replay runs (or drops it, past the bounds).</summary>
    /// <returns>False when no replay runs: the caller queues the change itself.</returns>
    public bool TryHold(byte[] frame, PgChange change)
    {
        if (!Volatile.Read(ref _active))
        {
            return false;
        }

        lock (_gate)
        {
            if (!_active)
            {
                return false;
            }

            if (_held.Count < maxFrames && _heldBytes + frame.Length <= maxBytes)
            {
                _held.Add((frame, change));
                _heldBytes += frame.Length;
            }
            else
            {
                _overflow = true;
            }

            return true;
        }
    }

    /// <summary>
    /// Ends the replay: <paramref name="release"/> gets the held changes, in order, under the lock, so that a live
    /// change routed meanwhile waits and goes out after them.
    /// </summary>
    /// <returns>True when changes were dropped because the buffer was full.</returns>
    public bool End(Action<IReadOnlyList<(byte[] Frame, PgChange Change)>> release)
    {
        lock (_gate)
        {
            release(_held);
            _held.Clear();
            _heldBytes = 0;
            var overflow = _overflow;
            _overflow = false;
            // Released after what `release` set (the resumed position, the snapshot): TryHold's read of false sees those.
            Volatile.Write(ref _active, false);
            return overflow;
        }
    }
}
