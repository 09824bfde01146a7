using System.Net;
using System.Net.WebSockets;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

public sealed class SecurityAndLimitsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Handshake_FromForeignOrigin_Gets403_OwnOriginAndNoOriginAreAccepted()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AllowedOrigins.Add("https://app.example.com"));

        var hijack = async () => await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("Origin", "https://evil.example"));
        (await hijack.Should().ThrowAsync<WebSocketException>()).Which.Message.Should().Contain("403");

        await using var own = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("Origin", $"http://{host.BaseAddress.Authority}"));
        await using var listed = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("Origin", "https://app.example.com"));
        await using var noOrigin = await TestSocket.ConnectAsync(host.SocketUri());
    }

    [Fact]
    public async Task PlainHttpRequest_Gets400WithAnExplanation()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        using var http = new HttpClient();

        var response = await http.GetAsync(new Uri(host.BaseAddress, "/ws/changes"));
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync()).Should().Contain("WebSocket");
    }

    [Fact]
    public async Task ConnectionsBeyondTheLimit_Get503_AndAFreedSlotIsReusable()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.MaxConnections = 2);
        var first = await TestSocket.ConnectAsync(host.SocketUri());
        await using var second = await TestSocket.ConnectAsync(host.SocketUri());

        var third = async () => await TestSocket.ConnectAsync(host.SocketUri());
        (await third.Should().ThrowAsync<WebSocketException>()).Which.Message.Should().Contain("503");

        await first.DisposeAsync();
        // The server frees the slot when it has finished closing the first socket: poll until it has, with a deadline.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await using var again = await TestSocket.ConnectAsync(host.SocketUri());
                break;
            }
            catch (WebSocketException) when (attempt < 100)
            {
                await Task.Delay(50);
            }
        }
    }

    [Fact]
    public async Task TooManySubscriptions_GetsErrorAndKeepsTheOnesItHas()
    {
        var tables = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            tables.Add(await db.CreateTableAsync());
        }

        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), tables, ws => ws.MaxSubscriptionsPerSocket = 2);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SubscribeAsync(tables[0]);
        await socket.SubscribeAsync(tables[1]);

        var error = await socket.RequestAsync(new { type = "subscribe", id = "r3", tables = new[] { tables[2] } });
        error.GetProperty("code").GetString().Should().Be("too_many_subscriptions");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(tables[1])} VALUES (1, 'kept')");
        (await socket.ReceiveAsync()).GetProperty("table").GetString().Should().Be(tables[1]);
    }

    [Fact]
    public async Task NonExposedTable_AnsweredLikeAMissingOne()
    {
        var exposed = await db.CreateTableAsync();
        var internalOnly = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [exposed, internalOnly],
            ws => ws.ExposedTables.Add(exposed));
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        var hidden = await socket.RequestAsync(new { type = "subscribe", tables = new[] { internalOnly } });
        var missing = await socket.RequestAsync(new { type = "subscribe", tables = new[] { "does_not_exist" } });
        hidden.GetProperty("code").GetString().Should().Be("unknown_table");
        hidden.GetProperty("message").GetString().Should().Be($"Table '{internalOnly}' is not available.");
        missing.GetProperty("message").GetString().Should().Be("Table 'does_not_exist' is not available.");
    }

    [Fact]
    public async Task AuthorizeSubscription_Denies_AndSeesTheAuthenticatedUser()
    {
        var table = await db.CreateTableAsync();
        var seenUsers = new List<string?>();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeSubscription = context =>
            {
                lock (seenUsers)
                {
                    seenUsers.Add(context.User.Identity?.Name);
                }

                return ValueTask.FromResult(context.User.IsInRole("reader"));
            },
            configureBuilder: AddHeaderAuthentication,
            configureApp: app =>
            {
                app.UseAuthentication();
                app.UseAuthorization();
                app.MapPgChangeWebSockets().RequireAuthorization();
            });

        // Anonymous: endpoint authorization refuses the handshake itself; no token in the URL is involved.
        var anonymous = async () => await TestSocket.ConnectAsync(host.SocketUri());
        (await anonymous.Should().ThrowAsync<WebSocketException>()).Which.Message.Should().Contain("401");

        await using var writer = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("X-Test-User", "wanda:writer"));
        var denied = await writer.RequestAsync(new { type = "subscribe", id = "d", tables = new[] { table } });
        denied.GetProperty("code").GetString().Should().Be("forbidden");

        await using var reader = await TestSocket.ConnectAsync(host.SocketUri(), o => o.SetRequestHeader("X-Test-User", "rita:reader"));
        await reader.SubscribeAsync(table);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'for readers')");
        (await reader.ReceiveAsync()).GetProperty("type").GetString().Should().Be("change");
        seenUsers.Should().Equal("wanda", "rita");
    }

    [Fact]
    public async Task AuthorizeChange_ShowsUsersOnlyTheirRows_AndAThrowingHookAffectsOnlyItsSocket()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, owner text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeChange = context =>
            {
                var user = context.User.Identity?.Name;
                if (user == "crash")
                {
                    throw new InvalidOperationException("the app's hook is broken for this user");
                }

                return context.Change.Row?.GetProperty("owner").GetString() == user;
            },
            configureBuilder: AddHeaderAuthentication,
            configureApp: app =>
            {
                app.UseAuthentication();
                app.UsePgChangeWebSockets();
            });

        await using var alice = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o => o.SetRequestHeader("X-Test-User", "alice:user"));
        await using var bob = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o => o.SetRequestHeader("X-Test-User", "bob:user"));
        await using var crash = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), o => o.SetRequestHeader("X-Test-User", "crash:user"));
        foreach (var s in new[] { alice, bob, crash })
        {
            await s.ReceiveTypeAsync("subscribed");
        }

        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'alice'), (2, 'bob'), (3, 'alice')");
        await db.ExecuteAsync($"DELETE FROM {t} WHERE id = 2");

        (await alice.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        (await alice.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(3);
        (await bob.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        var delete = await bob.ReceiveAsync();
        delete.GetProperty("operation").GetString().Should().Be("DELETE", "the hook sees the old row of a DELETE");

        // The crashing socket got nothing, but it is still open and answering.
        (await crash.RequestAsync(new { type = "ping", id = "alive" })).GetProperty("type").GetString().Should().Be("pong");
    }

    [Theory]
    [InlineData("/ws/changes/", 400)] // ours: a plain GET is told the endpoint takes WebSockets only
    [InlineData("/ws/changes", 400)]
    [InlineData("/WS/Changes/", 400)] // path segments compare case-insensitively, as Map compared them
    [InlineData("/ws/changes/extra", 404)] // below the endpoint: refused by the branch
    [InlineData("/ws/changesx", 404)] // not the endpoint: the app's own answer (nothing else is mapped)
    [InlineData("/ws", 404)]
    public async Task UsePgChangeWebSockets_AnswersItsPathOnly(string path, int status)
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        using var http = new HttpClient { BaseAddress = host.BaseAddress };
        using var response = await http.GetAsync(path);
        ((int)response.StatusCode).Should().Be(status);
        if (status == 400)
        {
            await using var socket = await TestSocket.ConnectAsync(new Uri($"ws://{host.BaseAddress.Authority}{path}?tables={table}"));
            await socket.ReceiveTypeAsync("subscribed");
        }
    }

    [Fact]
    public void UseAndMap_WithoutAddPgNotify_ThrowFriendlyErrors()
    {
        var app = WebApplication.CreateSlimBuilder().Build();
        var use = () => app.UsePgChangeWebSockets();
        use.Should().Throw<InvalidOperationException>().WithMessage("*AddPgNotify*");
        var map = () => app.MapPgChangeWebSockets();
        map.Should().Throw<InvalidOperationException>().WithMessage("*AddPgNotify*");
    }

    private static void AddHeaderAuthentication(WebApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(HeaderAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(HeaderAuthenticationHandler.SchemeName, null);
        builder.Services.AddAuthorization();
    }

    /// <summary>A test scheme: "X-Test-User: name:role". Real apps use cookies or JWT bearer; the mechanism is the same.</summary>
    private sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        public const string SchemeName = "TestHeader";

        protected override Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var header = Request.Headers["X-Test-User"].ToString();
            if (header.Split(':') is not [var name, var role])
            {
                return Task.FromResult(AuthenticateResult.NoResult());
            }

            var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim(ClaimTypes.Role, role)], SchemeName);
            return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
        }
    }
}
