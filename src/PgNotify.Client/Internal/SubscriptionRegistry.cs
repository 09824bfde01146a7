namespace PgNotify.Client.Internal;

/// <summary>The client's subscriptions by table (one per table: the server keeps one per table and socket). One lock.</summary>
internal sealed class SubscriptionRegistry
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ClientSubscription> _byTable = new(StringComparer.Ordinal);

    public void Add(ClientSubscription subscription)
    {
        lock (_gate)
        {
            if (!_byTable.TryAdd(subscription.Key, subscription))
            {
                throw new InvalidOperationException(
                    $"This client already subscribes to '{subscription.Table}', and the server keeps one subscription per table and socket. "
                    + "End the other enumeration first, or use a second PgNotifyClient.");
            }
        }
    }

    public void Remove(ClientSubscription subscription)
    {
        lock (_gate)
        {
            if (_byTable.TryGetValue(subscription.Key, out var current) && current == subscription)
            {
                _byTable.Remove(subscription.Key);
            }
        }
    }

    public ClientSubscription? Find(string key)
    {
        lock (_gate)
        {
            return _byTable.GetValueOrDefault(key);
        }
    }

    public List<ClientSubscription> All()
    {
        lock (_gate)
        {
            return [.. _byTable.Values];
        }
    }

    /// <summary>Removes every subscription and returns them.</summary>
    public List<ClientSubscription> Clear()
    {
        lock (_gate)
        {
            var all = _byTable.Values.ToList();
            _byTable.Clear();
            return all;
        }
    }
}
