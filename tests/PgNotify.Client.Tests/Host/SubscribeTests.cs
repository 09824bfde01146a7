using System.Text.Json.Nodes;
using PgNotify.Client;
using PgNotify.Client.Tests.Infrastructure;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Host;

/// <summary>The client against the real server: subscribe, filters, operations, refusals, typed rows.</summary>
public sealed class SubscribeTests(PostgresFixture db) : ClientTestBase(db)
{
    [Fact]
    public async Task Subscribe_ReceivesARowInsertedWithPsql()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        client.State.Should().Be(PgNotifyClientState.Connected);

        await using var messages = new Collector(client.SubscribeAsync(table));
        var subscribed = await messages.WaitForAsync<PgSubscribedMessage>();
        subscribed.Table.Should().Be(table);
        await InsertWithPsqlAsync(table, 1, "from psql");

        var change = await messages.WaitForAsync<PgChangeMessage>();
        change.Operation.Should().Be(PgChangeOperations.Insert);
        change.Schema.Should().Be("public");
        change.TableName.Should().Be(table);
        change.Data!.Value.GetProperty("name").GetString().Should().Be("from psql");
        change.GetData(TestJsonContext.Default.Item)!.Name.Should().Be("from psql");
        change.Xid.Should().BePositive();
        change.Timestamp.Should().NotBeNull();
    }

    [Fact]
    public async Task Subscribe_WithFilterAndOperations_ReceivesOnlyWhatItAskedFor()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        var options = new PgSubscribeOptions
        {
            Filter = new JsonObject { ["id"] = new JsonObject { ["gte"] = 10 }, ["name"] = new JsonObject { ["in"] = new JsonArray("a", "b") } },
            Operations = PgChangeOperations.Insert | PgChangeOperations.Delete,
        };

        await using var messages = new Collector(client.SubscribeAsync(table, options));
        await messages.WaitForAsync<PgSubscribedMessage>();
        await Db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a'), (10, 'c'), (11, 'a'), (12, 'b')");
        await Db.ExecuteAsync($"UPDATE {PostgresFixture.Quote(table)} SET name = 'b' WHERE id = 11");
        await Db.ExecuteAsync($"DELETE FROM {PostgresFixture.Quote(table)} WHERE id = 12");
        await InsertWithPsqlAsync(table, 99, "b"); // the marker: everything before it has been routed

        var received = new List<string>();
        while (true)
        {
            var change = await messages.WaitForAsync<PgChangeMessage>();
            received.Add($"{change.Operation} {IdOf(change)}");
            if (IdOf(change) == 99)
            {
                break;
            }
        }

        received.Should().Equal("Insert 11", "Insert 12", "Delete 12", "Insert 99");
    }

    [Fact]
    public async Task Subscribe_UnknownTable_EnumeratorThrowsTheServersErrorCode()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();

        var act = async () =>
        {
            await foreach (var _ in client.SubscribeAsync("no_such_table"))
            {
            }
        };

        (await act.Should().ThrowAsync<PgNotifyException>()).Which.Code.Should().Be("unknown_table");
        client.State.Should().Be(PgNotifyClientState.Connected, "a refused subscription does not end the connection");
    }

    [Fact]
    public async Task Subscribe_Cancelled_EndsTheEnumerationAndTheTableCanBeSubscribedAgain()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();

        using (var cts = new CancellationTokenSource())
        {
            var first = new Collector(client.SubscribeAsync(table, cancellationToken: cts.Token));
            await first.WaitForAsync<PgSubscribedMessage>();
            await cts.CancelAsync();
            var ended = async () => await first.Completion;
            await ended.Should().ThrowAsync<OperationCanceledException>();
        }

        await using var second = new Collector(client.SubscribeAsync(table));
        await second.WaitForAsync<PgSubscribedMessage>();
        await InsertWithPsqlAsync(table, 5, "again");
        (await second.WaitForAsync<PgChangeMessage>()).Data!.Value.GetProperty("id").GetInt32().Should().Be(5);
    }

    [Fact]
    public async Task Dispose_EndsEverySubscriptionNormally()
    {
        var table = await Db.CreateTableAsync();
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = new PgNotifyClient(new PgNotifyClientOptions { Url = host.SocketUri() });
        await client.ConnectAsync();
        var messages = new Collector(client.SubscribeAsync(table));
        await messages.WaitForAsync<PgSubscribedMessage>();

        await client.DisposeAsync();

        await messages.Completion.WaitAsync(Collector.Timeout);
        client.State.Should().Be(PgNotifyClientState.Disconnected);
    }
}
