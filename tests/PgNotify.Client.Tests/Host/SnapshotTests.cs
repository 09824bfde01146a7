using System.Text.Json.Nodes;
using PgNotify.Client;
using PgNotify.Client.Tests.Infrastructure;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Host;

/// <summary>Snapshot, then changes, against the real server: the raw messages, and LiveRows equal to the table.</summary>
public sealed class SnapshotTests(PostgresFixture db) : ClientTestBase(db)
{
    [Fact]
    public async Task Snapshot_SendsTheRowsUnderTheFilter_ThenTheChanges()
    {
        var table = await Db.CreateTableAsync();
        await Psql.RunAsync(Db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END FROM generate_series(1, 10) g");
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();

        await using var messages = new Collector(client.SubscribeAsync(table, new PgSubscribeOptions { Snapshot = true, Filter = new JsonObject { ["name"] = "even" } }));
        (await messages.WaitForAsync<PgSubscribedMessage>()).Snapshot.Should().BeTrue();
        var end = await messages.WaitForAsync<PgSnapshotEndMessage>();
        var rows = messages.Seen.OfType<PgSnapshotMessage>().SelectMany(s => s.Rows).Select(r => r.GetProperty("id").GetInt32()).ToList();
        rows.Should().Equal(2, 4, 6, 8, 10);
        end.Count.Should().Be(5);
        end.Truncated.Should().BeFalse();
        end.Key.Should().Equal("id");

        await InsertWithPsqlAsync(table, 12, "even");
        IdOf(await messages.WaitForAsync<PgChangeMessage>()).Should().Be(12);
    }

    [Fact]
    public async Task Snapshot_WithALimit_SaysItIsTruncated()
    {
        var table = await Db.CreateTableAsync();
        await Db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'x' FROM generate_series(1, 10) g");
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();

        await using var messages = new Collector(client.SubscribeAsync(table, new PgSubscribeOptions { Snapshot = true, SnapshotLimit = 3 }));
        var end = await messages.WaitForAsync<PgSnapshotEndMessage>();

        end.Count.Should().Be(3);
        end.Truncated.Should().BeTrue();
    }

    [Fact]
    public async Task Snapshot_OfATableWithoutPrimaryKey_EndsTheEnumerationWithSnapshotUnavailable()
    {
        var table = await Db.CreateTableAsync("id int, name text");
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();

        var collector = new Collector(client.SubscribeAsync(table, new PgSubscribeOptions { Snapshot = true }));
        var act = async () => await collector.Completion.WaitAsync(Collector.Timeout);

        (await act.Should().ThrowAsync<PgNotifyException>()).Which.Code.Should().Be("snapshot_unavailable");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task LiveRows_UnderConcurrentWrites_EndEqualToTheTableUnderTheFilter(bool lossless)
    {
        var table = await Db.CreateTableAsync();
        var quoted = PostgresFixture.Quote(table);
        await Db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END FROM generate_series(1, 200) g");
        var host = Own(await StartHostAsync([table], lossless));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        var filter = new JsonObject { ["name"] = new JsonObject { ["in"] = new JsonArray("a", "m") } };

        var during = WriteAsync(quoted, 150, seed: 7, firstId: 1000); // while the snapshot is taken
        await using var rows = new LiveRows<Item>(client, table, TestJsonContext.Default.Item, new PgSubscribeOptions { Filter = filter });
        await rows.StartAsync().WaitAsync(Collector.Timeout);
        await during;
        await WriteAsync(quoted, 150, seed: 8, firstId: 2000); // after it

        await Db.ExecuteAsync($"INSERT INTO {quoted} VALUES (100000, 'm')"); // the marker: the last write
        await WaitUntilAsync(rows, r => r.Rows.Any(i => i.Id == 100000));

        var expected = await SelectAsync(quoted, "WHERE name IN ('a', 'm')");
        rows.Rows.OrderBy(r => r.Id).Should().Equal(expected);
        rows.Status.Should().Be(LiveRowsStatus.Live);
    }

    [Fact]
    public async Task LiveRows_ListenerKilledInLiveMode_TakesANewSnapshot_AndEndsEqualToTheTable()
    {
        var table = await Db.CreateTableAsync();
        var quoted = PostgresFixture.Quote(table);
        await Db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, 'a' FROM generate_series(1, 50) g");
        var host = Own(await StartHostAsync([table], lossless: false));
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var rows = new LiveRows<Item>(client, table, TestJsonContext.Default.Item);
        await rows.StartAsync().WaitAsync(Collector.Timeout);
        var resyncing = WaitUntilAsync(rows, r => r.Status == LiveRowsStatus.Resyncing);

        (await Db.TerminateListenersAsync()).Should().BeGreaterThan(0);
        await Db.ExecuteAsync($"DELETE FROM {quoted} WHERE id <= 10"); // may fall in the listener's gap: the new snapshot covers it
        await Db.ExecuteAsync($"UPDATE {quoted} SET name = 'changed' WHERE id > 40");
        await resyncing;
        await WaitUntilAsync(rows, r => r.Status == LiveRowsStatus.Live);
        await host.Status.WaitUntilListeningAsync(new CancellationTokenSource(Collector.Timeout).Token);
        await Db.ExecuteAsync($"INSERT INTO {quoted} VALUES (100000, 'marker')");
        await WaitUntilAsync(rows, r => r.Rows.Any(i => i.Id == 100000));

        rows.Rows.OrderBy(r => r.Id).Should().Equal(await SelectAsync(quoted, ""));
    }

    [Fact]
    public async Task LiveRows_HostRestartInLosslessMode_ResumesWithoutANewSnapshot_AndEndsEqualToTheTable()
    {
        var table = await Db.CreateTableAsync();
        var quoted = PostgresFixture.Quote(table);
        await Db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, 'a' FROM generate_series(1, 20) g");
        var channel = PostgresFixture.NewName("ch");
        var port = FreePort();
        var host = await StartHostAsync([table], lossless: true, port, channel);
        var client = NewClient(host.SocketUri());
        await client.ConnectAsync();
        await using var rows = new LiveRows<Item>(client, table, TestJsonContext.Default.Item);
        await rows.StartAsync().WaitAsync(Collector.Timeout);

        await host.DisposeAsync();
        await Db.ExecuteAsync($"DELETE FROM {quoted} WHERE id <= 5");
        await Db.ExecuteAsync($"UPDATE {quoted} SET name = 'while down' WHERE id = 20");
        Own(await StartHostAsync([table], lossless: true, port, channel));
        await Db.ExecuteAsync($"INSERT INTO {quoted} VALUES (100000, 'marker')");
        await WaitUntilAsync(rows, r => r.Rows.Any(i => i.Id == 100000));

        rows.Rows.OrderBy(r => r.Id).Should().Equal(await SelectAsync(quoted, ""));
        rows.Status.Should().Be(LiveRowsStatus.Live, "a lossless resume needs no new snapshot");
    }

    /// <summary>Random inserts, updates (in and out of the filter) and deletes, one statement each.</summary>
    private async Task WriteAsync(string quoted, int count, int seed, int firstId)
    {
        var random = new Random(seed);
        for (var i = 0; i < count; i++)
        {
            var id = random.Next(1, 260);
            var name = "abm"[random.Next(3)].ToString();
            var sql = random.Next(4) switch
            {
                0 => $"INSERT INTO {quoted} VALUES ({firstId + i}, '{name}')",
                1 => $"DELETE FROM {quoted} WHERE id = {id}",
                _ => $"UPDATE {quoted} SET name = '{name}' WHERE id = {id}",
            };
            await Db.ExecuteAsync(sql);
        }
    }

    private async Task<List<Item>> SelectAsync(string quoted, string where)
    {
        await using var command = Db.DataSource.CreateCommand($"SELECT id, name FROM {quoted} {where} ORDER BY id");
        await using var reader = await command.ExecuteReaderAsync();
        var list = new List<Item>();
        while (await reader.ReadAsync())
        {
            list.Add(new Item(reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
        }

        return list;
    }

    private static async Task WaitUntilAsync(LiveRows<Item> rows, Func<LiveRows<Item>, bool> condition)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnChanged(object? sender, EventArgs e)
        {
            if (condition(rows))
            {
                reached.TrySetResult();
            }
        }

        rows.Changed += OnChanged;
        try
        {
            OnChanged(null, EventArgs.Empty);
            await reached.Task.WaitAsync(Collector.Timeout);
        }
        finally
        {
            rows.Changed -= OnChanged;
        }
    }
}
