using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Per-socket and per-client bounds (issue 10, defect 6 on the WebSocket side), request rates, and authorization that
/// is checked again while a socket lives (re-authorization and authentication expiry).
/// </summary>
public sealed class WebSocketLimitsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task StalledSocket_QueueIsBoundedInBytes_NotOnlyInFrames()
    {
        await using var scenario = await SubscribedSocket.StartAsync(
            db,
            ws =>
            {
                ws.SendQueueCapacity = 100_000; // the frame count alone would hold every change
                ws.SendQueueMaxBytes = 1024 * 1024;
                ws.SlowConsumerPolicy = PgNotify.WebSockets.PgSlowConsumerPolicy.Close;
            },
            "id int PRIMARY KEY, body text",
            o => o.SetBuffer(1024, 1024));
        var stalled = scenario.Socket;
        // About 10 MB of frames for the stalled socket, in rows of 5 KB.
        await db.ExecuteAsync($"INSERT INTO {scenario.QuotedTable} SELECT g, repeat('x', 5000) FROM generate_series(1, 2000) g");

        (await stalled.ReceiveCloseAsync(TimeSpan.FromSeconds(30))).Should().Be(WebSocketCloseStatus.PolicyViolation);
        stalled.Socket.CloseStatusDescription.Should().Be("slow consumer");
    }

    [Fact]
    public async Task OneAddress_CannotTakeEveryConnection_OthersStillConnect()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.MaxConnectionsPerClient = 2);
        await using var first = await TestSocket.ConnectAsync(host.SocketUri());
        await using var second = await TestSocket.ConnectAsync(host.SocketUri());

        var refused = await ConnectRefusedAsync(host.SocketUri());
        refused.Should().Be(HttpStatusCode.TooManyRequests);

        // A socket that closes frees its place.
        await second.DisposeAsync();
        await ChangeStreamExtensions.WaitUntilAsync(() => TryConnect(host.SocketUri()).GetAwaiter().GetResult(), because: "the closed socket's place is freed");
    }

    [Fact]
    public async Task PerClientCap_BehindAProxy_IsKeyedByTheForwardedAddress()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.MaxConnectionsPerClient = 2,
            configureBuilder: builder => builder.Services.Configure<ForwardedHeadersOptions>(o => o.ForwardedHeaders = ForwardedHeaders.XForwardedFor),
            configureApp: app =>
            {
                app.UseForwardedHeaders(); // loopback is a known proxy by default
                app.UsePgChangeWebSockets();
            });

        void From(ClientWebSocketOptions o, string address) => o.SetRequestHeader("X-Forwarded-For", address);
        await using var a1 = await TestSocket.ConnectAsync(host.SocketUri(), o => From(o, "203.0.113.10"));
        await using var a2 = await TestSocket.ConnectAsync(host.SocketUri(), o => From(o, "203.0.113.10"));
        (await ConnectRefusedAsync(host.SocketUri(), o => From(o, "203.0.113.10"))).Should().Be(HttpStatusCode.TooManyRequests);

        // Another client behind the same proxy is not affected.
        await using var b1 = await TestSocket.ConnectAsync(host.SocketUri(), o => From(o, "198.51.100.7"));
        (await b1.RequestAsync(new { type = "ping", id = 1 })).GetProperty("type").GetString().Should().Be("pong");
    }

    [Fact]
    public async Task PerClientCap_ForAuthenticatedUsers_IsKeyedByTheUser()
    {
        var table = await db.CreateTableAsync();
        await using var host = await StartAuthenticatedAsync(table, ws => ws.MaxConnectionsPerClient = 1);
        await using var alice = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("X-Test-User", "alice"));
        (await ConnectRefusedAsync(host.SocketUri(), o => o.SetRequestHeader("X-Test-User", "alice"))).Should().Be(HttpStatusCode.TooManyRequests);

        // Same address, another user.
        await using var bob = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("X-Test-User", "bob"));
        (await bob.RequestAsync(new { type = "ping", id = 1 })).GetProperty("type").GetString().Should().Be("pong");
    }

    [Fact]
    public async Task RequestFlood_IsRateLimitedAndClosed_WithoutSlowingOtherSockets()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, ws => ws.MaxMessagesPerSecond = 10);
        var (table, t, bystander) = (scenario.Table, scenario.QuotedTable, scenario.Socket);
        await using var flooder = await TestSocket.ConnectAsync(scenario.Host.SocketUri());

        var flood = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 5_000 && flooder.Socket.State == WebSocketState.Open; i++)
                {
                    await flooder.SendAsync("{\"type\":\"subscribe\",\"tables\":[\"" + table + "\"],\"filter\":{\"name\":{\"in\":[\"a\",\"b\"]}}}");
                }
            }
            catch (WebSocketException)
            {
                // closed by the server mid-flood: expected
            }
        });

        for (var i = 1; i <= 20; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'x')");
            var frame = await bystander.ReceiveAsync(TimeSpan.FromSeconds(5));
            frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
        }

        var frames = new List<string?>();
        WebSocketCloseStatus? status = null;
        while (status is null)
        {
            try
            {
                frames.Add((await flooder.ReceiveAsync(TimeSpan.FromSeconds(30))).GetProperty("type").GetString());
            }
            catch (WebSocketException)
            {
                status = flooder.CloseStatus;
            }
        }

        status.Should().Be(WebSocketCloseStatus.PolicyViolation);
        frames.Should().Contain("error");
        await flood.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Reauthorization_ARevokedSubscriptionEnds_WithAnUnsubscribedFrame()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var allowed = 1;
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws =>
        {
            ws.ReauthorizeInterval = TimeSpan.FromMilliseconds(200);
            ws.AuthorizeSubscription = context => ValueTask.FromResult(
                Volatile.Read(ref allowed) == 1 || !context.HttpContext.Request.Query.ContainsKey("revocable"));
        });
        await using var revoked = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&revocable=1"));
        await using var kept = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}"));
        await revoked.ReceiveTypeAsync("subscribed");
        await kept.ReceiveTypeAsync("subscribed");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'both')");
        (await revoked.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        (await kept.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);

        Volatile.Write(ref allowed, 0);
        var ended = await revoked.ReceiveAsync(TimeSpan.FromSeconds(10));
        ended.GetProperty("type").GetString().Should().Be("unsubscribed", ended.ToString());
        ended.GetProperty("reason").GetString().Should().Be("forbidden");
        ended.GetProperty("tables")[0].GetString().Should().EndWith(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'kept only')");
        (await kept.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        (await revoked.RequestAsync(new { type = "ping", id = "after" })).GetProperty("type").GetString().Should().Be("pong", "the revoked socket got no change");
    }

    [Fact]
    public async Task AuthenticationExpiry_ClosesTheSocketWith4001()
    {
        var table = await db.CreateTableAsync();
        await using var host = await StartAuthenticatedAsync(table);
        // AuthenticationProperties keeps ExpiresUtc to the second (it stores it as an RFC 1123 date).
        var expires = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddSeconds(2).ToUnixTimeSeconds());
        await using var expiring = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o =>
        {
            o.SetRequestHeader("X-Test-User", "carol");
            o.SetRequestHeader("X-Test-Expires", expires.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
        });
        await using var lasting = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o => o.SetRequestHeader("X-Test-User", "dave"));
        await expiring.ReceiveTypeAsync("subscribed");
        await lasting.ReceiveTypeAsync("subscribed");

        (await expiring.ReceiveCloseAsync(TimeSpan.FromSeconds(15))).Should().Be((WebSocketCloseStatus)4001);
        expiring.Socket.CloseStatusDescription.Should().Be("authentication expired");
        DateTimeOffset.UtcNow.Should().BeOnOrAfter(expires, "the socket lives until its authentication expires");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'still here')");
        (await lasting.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
    }

    private Task<WebHost> StartAuthenticatedAsync(string table, Action<PgNotify.WebSockets.PgChangeWebSocketOptions>? configure = null) =>
        WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure,
            configureBuilder: builder =>
            {
                builder.Services.AddAuthentication(ExpiringHeaderAuthenticationHandler.SchemeName)
                    .AddScheme<AuthenticationSchemeOptions, ExpiringHeaderAuthenticationHandler>(ExpiringHeaderAuthenticationHandler.SchemeName, null);
                builder.Services.AddAuthorization();
            },
            configureApp: app =>
            {
                app.UseAuthentication();
                app.UsePgChangeWebSockets();
            });

    private static async Task<HttpStatusCode?> ConnectRefusedAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var connect = () => socket.ConnectAsync(uri, timeout.Token);
        await connect.Should().ThrowAsync<WebSocketException>();
        return socket.HttpStatusCode;
    }

    private static async Task<bool> TryConnect(Uri uri)
    {
        try
        {
            await using var socket = await TestSocket.ConnectAsync(uri);
            return true;
        }
        catch (WebSocketException)
        {
            return false;
        }
    }

    /// <summary>"X-Test-User: name", and optionally "X-Test-Expires: unix ms" as the ticket's ExpiresUtc (as a cookie or bearer token has).</summary>
    private sealed class ExpiringHeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "TestExpiringHeader";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var name = Request.Headers["X-Test-User"].ToString();
            if (name.Length == 0)
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var properties = new AuthenticationProperties();
            if (long.TryParse(Request.Headers["X-Test-Expires"].ToString(), out var ms))
            {
                properties.ExpiresUtc = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), properties, SchemeName)));
        }
    }
}

/// <summary>The default send-queue bounds against a burst; runs alone so that the reading client's speed means something.</summary>
[Collection(PgNotify.Tests.WebSockets.HeavyCollection.Name)]
public sealed class SendQueueDefaultsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task DefaultLimits_ABurstOf40000SmallRows_ReachesAReadingSocketWhole()
    {
        await using var scenario = await SubscribedSocket.StartAsync(db);
        var (table, socket) = (scenario.Table, scenario.Socket);

        // 40,000 rows in one second: ten transactions of 4,000 rows, 100 ms apart.
        const int rows = 40_000, batches = 10, perBatch = rows / batches;
        var insert = Task.Run(async () =>
        {
            for (var b = 0; b < batches; b++)
            {
                var next = Task.Delay(100);
                await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series({(b * perBatch) + 1}, {(b + 1) * perBatch}) g");
                await next; // the write rate, not a wait for anything to settle
            }
        });
        for (var i = 1; i <= rows; i++)
        {
            var frame = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
            frame.GetProperty("type").GetString().Should().Be("change", "the default bounds hold a burst of small rows: " + frame);
            frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
        }

        await insert;
    }
}
