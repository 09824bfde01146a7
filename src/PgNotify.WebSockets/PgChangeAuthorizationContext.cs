using System.Security.Claims;
using Microsoft.AspNetCore.Http;

namespace PgNotify.WebSockets;

/// <summary>
/// What <see cref="PgChangeWebSocketOptions.AuthorizeChange"/> decides about: whether one change may go to one socket.
/// The instance is reused for the socket's changes: do not keep it.
/// </summary>
public sealed class PgChangeAuthorizationContext
{
    internal PgChangeAuthorizationContext(HttpContext httpContext) => HttpContext = httpContext;

    /// <summary>The WebSocket's HTTP request.</summary>
    public HttpContext HttpContext { get; }

    /// <summary>The authenticated user of the socket.</summary>
    public ClaimsPrincipal User => HttpContext.User;

    /// <summary>The change about to be sent.</summary>
    public PgChange Change { get; internal set; } = null!;
}
