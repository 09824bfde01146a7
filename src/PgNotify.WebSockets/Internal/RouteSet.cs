namespace PgNotify.WebSockets.Internal;

/// <summary>One socket's subscription to a table, as the fan-out routes to it.</summary>
internal readonly record struct Route(SocketSession Session, Subscription Subscription);

/// <summary>
/// The sockets subscribed to one table. Subscribing and unsubscribing change <see cref="Members"/> under the routes
/// lock and drop the snapshot; the fan-out routes from the snapshot, rebuilt when it next needs it. So a thousand
/// sockets subscribing cost a thousand dictionary updates, not a thousand copies of an ever longer array.
/// </summary>
internal sealed class RouteSet
{
    private Route[]? _snapshot;

    public Dictionary<SocketSession, Route> Members { get; } = [];

    public Route[]? Snapshot => Volatile.Read(ref _snapshot);

    public void Invalidate() => Volatile.Write(ref _snapshot, null);

    public Route[] Rebuild(Lock gate)
    {
        lock (gate)
        {
            var routes = _snapshot ?? [.. Members.Values];
            Volatile.Write(ref _snapshot, routes);
            return routes;
        }
    }
}
