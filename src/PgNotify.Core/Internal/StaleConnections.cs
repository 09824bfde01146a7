using System.Net.Sockets;
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
        NpgsqlException { InnerException: IOException or SocketException } => true, // the socket was gone without a word
        _ => false,
    };

    /// <summary>Runs <paramref name="read"/>; if it met a connection the server had closed, clears the pool and runs it once more.</summary>
    public static async Task<T> ReadAsync<T>(NpgsqlDataSource pool, Func<Task<T>> read, CancellationToken cancellationToken)
    {
        try
        {
            return await read().ConfigureAwait(false);
        }
        catch (Exception ex) when (ClosedByServer(ex) && !cancellationToken.IsCancellationRequested)
        {
            pool.Clear();
            return await read().ConfigureAwait(false);
        }
    }
}
