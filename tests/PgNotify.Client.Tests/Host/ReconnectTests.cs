using PgNotify.Client;
using PgNotify.Client.Tests.Infrastructure;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Host;

/// <summary>
/// What the client does when the connection goes: a host restart and a killed listener backend (lossless: resume with
/// <c>since</c>, nothing lost; live: a resync), and a black-holed connection that only the heartbeat notices.
/// </summary>
public sealed class ReconnectTests(PostgresFixture db) : ClientTestBase(db)
{
    [Fact]
    public async Task HostRestart_Lossless_ResumesFromItsPositionAndLosesNothing()
    {
        var table = await Db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        var port = FreePort();
        var host = await StartHostAsync([table], lossless: true, port, channel);
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();
        await InsertWithPsqlAsync(table, 1, "before");
        (await messages.WaitForAsync<PgChangeMessage>()).Position.Should().NotBeNull();

        await host.DisposeAsync();
        await InsertWithPsqlAsync(table, 2, "while down");
        await InsertWithPsqlAsync(table, 3, "while down");
        host = Own(await StartHostAsync([table], lossless: true, port, channel));

        var resumed = await messages.WaitForAsync<PgSubscribedMessage>();
        resumed.Resumed.Should().BeTrue();
        await InsertWithPsqlAsync(table, 4, "after");
        var ids = new List<int>();
        while (ids.Count < 3)
        {
            ids.Add(IdOf(await messages.WaitForAsync<PgChangeMessage>()));
        }

        ids.Should().Equal(2, 3, 4);
        messages.Seen.OfType<PgResyncMessage>().Should().BeEmpty("a lossless resume needs no reload");
        (await Logs.WaitForAsync(3001)).Should().Contain("lost");
    }

    [Fact]
    public async Task HostRestart_Live_TellsTheSubscriptionToResyncOnceLiveAgain()
    {
        var table = await Db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        var port = FreePort();
        var host = await StartHostAsync([table], lossless: false, port, channel);
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();

        await host.DisposeAsync();
        await InsertWithPsqlAsync(table, 2, "while down: lost, and the resync says so");
        host = Own(await StartHostAsync([table], lossless: false, port, channel));

        var resync = await messages.WaitForAsync<PgResyncMessage>();
        resync.Reason.Should().Be("reconnected");
        (await messages.WaitForAsync<PgSubscribedMessage>()).Resumed.Should().BeFalse();
        await InsertWithPsqlAsync(table, 3, "after");
        IdOf(await messages.WaitForAsync<PgChangeMessage>()).Should().Be(3);
    }

    [Fact]
    public async Task ListenerKilled_Live_DeliversTheServersResync()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();

        (await Db.TerminateListenersAsync()).Should().BeGreaterThan(0);

        (await messages.WaitForAsync<PgResyncMessage>()).Reason.Should().Be("listener_reconnected");
        await host.Status.WaitUntilListeningAsync(new CancellationTokenSource(Collector.Timeout).Token);
        await InsertWithPsqlAsync(table, 7, "after the kill");
        IdOf(await messages.WaitForAsync<PgChangeMessage>()).Should().Be(7);
        client.State.Should().Be(PgNotifyClientState.Connected, "the socket itself never dropped");
    }

    [Fact]
    public async Task ListenerKilled_Lossless_EveryChangeArrivesInOrderWithoutAResync()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: true));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();

        await InsertWithPsqlAsync(table, 1, "before");
        (await Db.TerminateListenersAsync()).Should().BeGreaterThan(0);
        for (var id = 2; id <= 5; id++)
        {
            await InsertWithPsqlAsync(table, id, "during and after");
        }

        var ids = new List<int>();
        while (ids.Count < 5)
        {
            ids.Add(IdOf(await messages.WaitForAsync<PgChangeMessage>()));
        }

        ids.Should().Equal(1, 2, 3, 4, 5);
        messages.Seen.OfType<PgResyncMessage>().Should().BeEmpty();
    }

    [Fact]
    public async Task BlackholedConnection_TheHeartbeatNoticesIt_AndTheClientResumesThroughANewOne()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: true));
        var proxy = Own(new TcpProxy("127.0.0.1", host.BaseAddress.Port));
        var client = NewClient(new Uri($"ws://127.0.0.1:{proxy.Port}/ws/changes/"), options =>
        {
            options.HeartbeatInterval = TimeSpan.FromMilliseconds(300);
            options.HeartbeatTimeout = TimeSpan.FromMilliseconds(300);
        });
        await client.ConnectAsync();
        await using var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();
        await InsertWithPsqlAsync(table, 1, "before");
        IdOf(await messages.WaitForAsync<PgChangeMessage>()).Should().Be(1);

        proxy.BlackholeExisting();
        await InsertWithPsqlAsync(table, 2, "sent into the black hole");

        await Logs.WaitForAsync(3006); // heartbeat timeout
        (await messages.WaitForAsync<PgSubscribedMessage>()).Resumed.Should().BeTrue();
        IdOf(await messages.WaitForAsync<PgChangeMessage>()).Should().Be(2);
        proxy.ConnectionCount.Should().BeGreaterThanOrEqualTo(2);
    }

    [Fact]
    public async Task OriginRefused_ConnectAsyncThrowsAndTheClientIsFaulted_WithoutRetrying()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false, configureWebSockets: ws => ws.AllowedOrigins.Add("https://allowed.example")));
        var client = NewClient(host.SocketUri(), options => options.Headers["Origin"] = "https://evil.example");

        var refused = (await client.Invoking(c => c.ConnectAsync()).Should().ThrowAsync<PgNotifyException>()).Which;

        refused.Code.Should().Be("handshake_refused");
        refused.StatusCode.Should().Be(403);
        client.State.Should().Be(PgNotifyClientState.Faulted);
        client.Error.Should().BeSameAs(refused);
        Logs.All.Should().NotContain(e => e.EventId == 3002, "a refused handshake is not retried");
    }
}
