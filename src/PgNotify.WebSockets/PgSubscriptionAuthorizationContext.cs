using System.Security.Claims;
using Microsoft.AspNetCore.Http;

namespace PgNotify.WebSockets;

/// <summary>What <see cref="PgChangeWebSocketOptions.AuthorizeSubscription"/> decides about: one table of a subscribe request.</summary>
public sealed class PgSubscriptionAuthorizationContext
{
    internal PgSubscriptionAuthorizationContext(HttpContext httpContext, PgTableName table, IReadOnlyCollection<PgChangeOperation> operations)
    {
        HttpContext = httpContext;
        Table = table;
        Operations = operations;
    }

    /// <summary>The WebSocket's HTTP request (its headers, connection, services).</summary>
    public HttpContext HttpContext { get; }

    /// <summary>The authenticated user of the socket (<see cref="HttpContext.User"/>).</summary>
    public ClaimsPrincipal User => HttpContext.User;

    /// <summary>The table the client asks for.</summary>
    public PgTableName Table { get; }

    /// <summary>The operations the client asks for.</summary>
    public IReadOnlyCollection<PgChangeOperation> Operations { get; }
}
