namespace PgNotify.WebSockets.Internal;

/// <summary>The state of the WebSocket fan-out loop (<see cref="FanOutSupervisor.State"/>), for health checks.</summary>
internal enum PgRouterState
{
    /// <summary>Routing changes (also before the app started it).</summary>
    Running = 0,

    /// <summary>The loop died and restarts after a short delay: changes are not routed meanwhile.</summary>
    Restarting = 1,
}
