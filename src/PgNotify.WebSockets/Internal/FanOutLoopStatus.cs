namespace PgNotify.WebSockets.Internal;

/// <summary>
/// The WebSocket fan-out's state as PgNotify's health check reads it (Core's <see cref="IPgNotifyLoopStatus"/>): while
/// the loop restarts after an unexpected failure, no change reaches any socket, and the check reports the failure status.
/// </summary>
internal sealed class FanOutLoopStatus(PgChangeRouter router) : IPgNotifyLoopStatus
{
    public string? Failure => router.State == PgRouterState.Running
        ? null
        : $"PgNotify's WebSocket fan-out loop failed ({router.LastFault?.GetType().Name}: {router.LastFault?.Message}) and is " +
          "restarting: no change reaches any socket until it runs again.";

    public Exception? LastFault => router.LastFault;

    public void AddData(IDictionary<string, object> data)
    {
        data["fanout_state"] = router.State.ToString();
        data["fanout_restarts"] = router.RestartCount;
        data["fanout_failed_changes"] = router.FailedChangeCount;
    }
}
