using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// Npgsql's pools do not check a connection before handing it out: one the server closed while it sat idle (a restart,
/// a failover, <c>pg_terminate_backend</c>, <c>idle_session_timeout</c>) fails on its first use, and the others of the
/// pool most likely went with it. Reads that may simply be run again clear the pool and run once more.
/// </summary>
internal static class StaleConnections
{
    /// <summary>Whether <paramref name="exception"/> says the server had closed the connection.</summary>
    public static bool ClosedByServer(Exception exception) => exception switch
    {
        PostgresException { SqlState: "57P01" or "57P02" or "57P05" } => true, // admin_shutdown, crash_shutdown, idle_session_timeout
        // The socket was gone without a word: a read or write on it failed. (A connection that cannot be opened at all
        // fails with the socket error itself, not wrapped in an IOException: it is not stale, and not retried.)
        NpgsqlException { InnerException: IOException } => true,
        _ => false,
    };

    /// <summary>
    /// Runs <paramref name="read"/>; if it met a connection the server had closed, tells <paramref name="onStale"/>,
    /// clears the pool and runs it once more.
    /// </summary>
    public static async Task<T> ReadAsync<T>(
        NpgsqlDataSource pool, Func<Task<T>> read, CancellationToken cancellationToken, Action<Exception>? onStale = null)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (Exception ex) when (ClosedByServer(ex) && !cancellationToken.IsCancellationRequested)
        {
            onStale?.Invoke(ex);
            pool.Clear();
            return await read().ConfigureAwait(false);
        }
    }
}
