using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.WebSockets.Internal;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds PgNotify's WebSocket endpoint to the middleware pipeline.</summary>
public static class PgChangeWebSocketApplicationBuilderExtensions
{
    /// <summary>The path <see cref="UsePgChangeWebSockets"/> serves unless told otherwise: <c>/ws/changes/</c>.</summary>
    public const string DefaultPath = "/ws/changes/";

    /// <summary>
    /// Serves PgNotify's WebSocket protocol at <paramref name="path"/> (with or without the trailing slash). To require
    /// authorization on it, use <c>MapPgChangeWebSockets(...).RequireAuthorization()</c> instead.
    /// </summary>
    /// <param name="app">The application.</param>
    /// <param name="path">The path. Default: <c>/ws/changes/</c>.</param>
    /// <returns>The application, for chaining.</returns>
    /// <exception cref="InvalidOperationException"><c>AddPgNotify</c> was not called.</exception>
    public static IApplicationBuilder UsePgChangeWebSockets(this IApplicationBuilder app, string path = DefaultPath)
    {
        ArgumentNullException.ThrowIfNull(app);
        ArgumentException.ThrowIfNullOrEmpty(path);
        Microsoft.Extensions.DependencyInjection.PgChangeWebSocketServiceCollectionExtensions.EnsureAdded(app.ApplicationServices);
        var handler = app.ApplicationServices.GetRequiredService<PgChangeWebSocketHandler>();
        var exact = new PathString("/" + path.Trim('/'));
        // MapWhen rather than Map: Map's middleware awaits its branch (to restore the path), a frame every socket would
        // keep for its whole life; the path below the endpoint is checked here instead.
        return app.MapWhen(context => context.Request.Path.StartsWithSegments(exact), branch =>
        {
            branch.UseWebSockets();
            branch.Run(context =>
            {
                context.Request.Path.StartsWithSegments(exact, out var rest);
                if (rest.HasValue && rest.Value != "/")
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                return handler.HandleAsync(context);
            });
        });
    }
}
