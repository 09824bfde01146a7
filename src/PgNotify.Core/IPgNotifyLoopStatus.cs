namespace PgNotify;

/// <summary>
/// A loop outside PgNotify.Core that PgNotify's health check reports on (the WebSocket fan-out registers one). Register
/// implementations as <c>IPgNotifyLoopStatus</c> singletons; the check reads them from any thread.
/// </summary>
public interface IPgNotifyLoopStatus
{
    /// <summary>
    /// While the loop is not running (it failed and restarts): what that costs, for the health description, for
    /// example "PgNotify's WebSocket fan-out loop failed (...) and is restarting: no change reaches any socket until it
    /// runs again."; <see langword="null"/> while it runs.
    /// </summary>
    string? Failure { get; }

    /// <summary>The exception that stopped the loop last, or <see langword="null"/>.</summary>
    Exception? LastFault { get; }

    /// <summary>Adds the loop's own entries to the health check's data (for example <c>fanout_state</c>).</summary>
    /// <param name="data">The health check's data.</param>
    void AddData(IDictionary<string, object> data);
}
