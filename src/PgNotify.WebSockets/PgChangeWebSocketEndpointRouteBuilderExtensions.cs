using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.WebSockets.Internal;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps PgNotify's WebSocket endpoint with endpoint routing, so authorization and other conventions apply.</summary>
public static class PgChangeWebSocketEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps PgNotify's WebSocket protocol at <paramref name="pattern"/>. The result chains conventions such as
    /// <c>.RequireAuthorization()</c>: the socket's user is then ASP.NET Core's authenticated user (cookie or bearer
    /// header), with no token in the URL.
    /// </summary>
    /// <param name="endpoints">The endpoint route builder.</param>
    /// <param name="pattern">The route pattern. Default: <c>/ws/changes</c> (a trailing slash also matches).</param>
    /// <returns>A builder for endpoint conventions.</returns>
    /// <exception cref="InvalidOperationException"><c>AddPgNotify</c> was not called.</exception>
    public static IEndpointConventionBuilder MapPgChangeWebSockets(this IEndpointRouteBuilder endpoints, string pattern = "/ws/changes")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        PgChangeWebSocketServiceCollectionExtensions.EnsureAdded(endpoints.ServiceProvider);
        var handler = endpoints.ServiceProvider.GetRequiredService<PgChangeWebSocketHandler>();
        var pipeline = endpoints.CreateApplicationBuilder().UseWebSockets();
        pipeline.Run(handler.HandleAsync);

        // Routing ignores a trailing slash, so "/ws/changes" also answers "/ws/changes/".
        return endpoints.Map("/" + pattern.Trim('/'), pipeline.Build()).WithDisplayName("PgNotify WebSockets");
    }
}
