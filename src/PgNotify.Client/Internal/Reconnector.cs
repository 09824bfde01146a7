using Microsoft.Extensions.Logging;

namespace PgNotify.Client.Internal;

/// <summary>
/// Opens connections with backoff: full jitter above a floor, an attempt count that starts over only after a connection
/// stayed up <see cref="PgNotifyClientOptions.MinUptime"/>, and an end after <see cref="PgNotifyClientOptions.MaxRetries"/>.
/// A refused handshake is not retried. Used by the connection loop only.
/// </summary>
internal sealed class Reconnector(PgNotifyClientOptions options, TimeProvider time, ILogger logger)
{
    private int _attempt;

    /// <summary>A connection ended: the count starts over if it stayed up long enough.</summary>
    public void Ended(long connectedAt)
    {
        if (time.GetElapsedTime(connectedAt) >= options.MinUptime)
        {
            _attempt = 0;
        }
    }

    /// <summary>Opens a connection, retrying with backoff (waiting first after a lost connection).</summary>
    /// <exception cref="PgNotifyException">The handshake was refused (<c>handshake_refused</c>) or the client gave up (<c>gave_up</c>).</exception>
    public async Task<SocketConnection> OpenAsync(bool waitFirst, CancellationToken cancellationToken)
    {
        for (var wait = waitFirst; ; wait = true)
        {
            if (wait)
            {
                if (_attempt >= options.MaxRetries)
                {
                    ClientLog.GaveUp(logger, _attempt);
                    throw new PgNotifyException("gave_up", $"Gave up after {_attempt} failed connection attempts in a row (MaxRetries).");
                }

                var delay = Backoff.Delay(_attempt++, options.MinReconnectDelay, options.MaxReconnectDelay, Random.Shared.NextDouble());
                var waited = Task.Delay(delay, time, cancellationToken); // the timer runs before the log says so
                ClientLog.Reconnecting(logger, (long)Math.Ceiling(delay.TotalMilliseconds), _attempt);
                await waited.ConfigureAwait(false);
            }

            try
            {
                return await SocketConnection.OpenAsync(options, time, cancellationToken).ConfigureAwait(false);
            }
            catch (PgNotifyException ex)
            {
                ClientLog.HandshakeRefused(logger, ex.StatusCode, ex.Message);
                throw;
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                ClientLog.AttemptFailed(logger, _attempt, ex);
            }
        }
    }
}
