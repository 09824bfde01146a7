using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.HttpOverrides;
using Npgsql;
using PgNotify.Sample;

// The content root is the app's own folder, so appsettings.json is found from whatever directory it is started in.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

// Listen where --urls / ASPNETCORE_URLS say, else on loopback port 5080.
if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}

// wwwroot, the JS client (linked from clients/js) and React are static web assets: serve them from the build output
// too, not only in Development.
builder.WebHost.UseStaticWebAssets();

var connectionString = builder.Configuration.GetConnectionString("Postgres");
if (string.IsNullOrWhiteSpace(connectionString))
{
    throw new InvalidOperationException(
        "Set the connection string 'ConnectionStrings:Postgres' (environment: ConnectionStrings__Postgres). " +
        "scripts/run-sample.sh starts a local PostgreSQL and sets it for you.");
}

builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(connectionString));

// Registered before AddPgNotify: hosted services start in order, so the tables exist before the listener enables
// their triggers (it refuses to start on an unknown table).
builder.Services.AddHostedService<SampleSchema>();

// Tables and excluded columns come from the "PgNotify" section of appsettings.json; more tables need no code:
// PgNotify__Tables__3=orders.
builder.Services.AddPgNotify();

// Behind a reverse proxy (samples/nginx): take the client's scheme and address from X-Forwarded-* headers, from
// proxies on loopback only (ForwardedHeadersOptions.KnownProxies to add others). The WebSocket origin check compares
// the page's Origin with this scheme and the Host header, which the proxy passes on unchanged.
builder.Services.Configure<ForwardedHeadersOptions>(options =>
    options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto);

var app = builder.Build();

app.UseForwardedHeaders();
app.UseDefaultFiles();
app.UseStaticFiles();
app.UsePgChangeWebSockets(); // /ws/changes/
app.MapSampleApi();

app.Lifetime.ApplicationStarted.Register(() =>
{
    var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
    foreach (var address in addresses)
    {
        Console.WriteLine($"PgNotify sample: open {address.TrimEnd('/')}/");
    }
});

app.Run();
