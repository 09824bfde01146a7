using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Features.Authentication;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// <see cref="PgChangeWebSocketOptions.MaxConnectionsPerClient"/>: the open sockets of each client (authenticated user,
/// else remote address), one entry per client shared by its sockets.
/// </summary>
internal sealed class ClientConnectionLimit(int maxPerClient)
{
    private readonly Dictionary<string, Entry> _clients = new(StringComparer.Ordinal);

    /// <summary>
    /// Who the socket belongs to, for <see cref="PgChangeWebSocketOptions.MaxConnectionsPerClient"/>: the authenticated
    /// user, else the remote address (the client's own behind a proxy when the app uses forwarded headers).
    /// </summary>
    public static string Key(HttpContext context)
    {
        // Through the features: HttpContext.User and HttpContext.Connection would each add objects that an idle socket
        // keeps for its whole life (an empty principal, a connection-info wrapper).
        if (context.Features.Get<IHttpAuthenticationFeature>()?.User is { Identity.IsAuthenticated: true } user
            && (user.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)?.Value ?? user.Identity!.Name) is { Length: > 0 } name)
        {
            return "user:" + name;
        }

        return "ip:" + (context.Features.Get<IHttpConnectionFeature>()?.RemoteIpAddress?.ToString() ?? "unknown");
    }

    /// <summary>Counts one more socket for <paramref name="key"/>; null when it has as many as it may have.</summary>
    /// <returns>The client's entry, shared by its sockets (each socket keeps a reference, not a copy of the key).</returns>
    public Entry? TryAdd(string key)
    {
        lock (_clients)
        {
            if (!_clients.TryGetValue(key, out var client))
            {
                client = new Entry(key);
                _clients.Add(key, client);
            }

            if (client.Count >= maxPerClient)
            {
                return null; // an entry with no socket is not left behind: a client at the limit has one already
            }

            client.Count++;
            return client;
        }
    }

    /// <summary>Counts one socket of <paramref name="client"/> less.</summary>
    public void Remove(Entry client)
    {
        lock (_clients)
        {
            if (--client.Count == 0)
            {
                _clients.Remove(client.Key);
            }
        }
    }

    /// <summary>One client's open sockets.</summary>
    public sealed class Entry(string key)
    {
        public string Key { get; } = key;

        public int Count { get; set; }
    }
}
