using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>Defects of issue 10 on the WebSocket side, each reproduced on a real host with real sockets.</summary>
public sealed class WebSocketDefectTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<string> LoneSurrogateFilters() => new()
    {
        "{\"name\":\"\\ud800\"}",
        "{\"name\":{\"in\":[\"a\",\"\\ud800\"]}}",
        "{\"name\":{\"lt\":\"\\ud800\"}}",
        "{\"name\":{\"neq\":\"\\udc00x\"}}",
    };

    [Theory]
    [MemberData(nameof(LoneSurrogateFilters))]
    public async Task Subscribe_FilterWithLoneSurrogate_GetsErrorFrame_AndTheHostKeepsDelivering(string filter)
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var lifetime = host.App.Services.GetRequiredService<IHostApplicationLifetime>();
        await using var bystander = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await bystander.ReceiveTypeAsync("subscribed");
        await using var attacker = await TestSocket.ConnectAsync(host.SocketUri());

        await attacker.SendAsync("{\"type\":\"subscribe\",\"id\":\"evil\",\"tables\":[\"" + table + "\"],\"filter\":" + filter + "}");
        var answer = await attacker.ReceiveAsync();
        answer.GetProperty("type").GetString().Should().Be("error", answer.ToString());
        answer.GetProperty("code").GetString().Should().Be("invalid_message");
        answer.GetProperty("id").GetString().Should().Be("evil");

        for (var i = 1; i <= 3; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'row {i}')");
            (await bystander.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
        }

        lifetime.ApplicationStopping.IsCancellationRequested.Should().BeFalse("bad client input never stops the host");
        (await attacker.RequestAsync(new { type = "ping", id = 1 })).GetProperty("type").GetString().Should().Be("pong");
    }

    [Fact]
    public async Task AuthorizeChange_DuringReplayAndLiveChanges_SeesTheChangeItIsAskedAbout()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var calls = 0;
        var mismatches = 0;
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeChange = context =>
            {
                var asked = context.Change;
                Thread.SpinWait(20_000); // a hook that does some work: time for another thread to write a shared context
                Interlocked.Increment(ref calls);
                if (!ReferenceEquals(asked, context.Change))
                {
                    Interlocked.Increment(ref mismatches);
                }

                return true;
            },
            o => o.LosslessDelivery = true);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (0, 'before')");
        var start = await db.ScalarAsync<long>("SELECT max(position) FROM pgnotify.change_log");
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'missed' FROM generate_series(1, 1500) g");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.DeliveredPosition >= start + 1500);

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var id = 100_000;
            while (!stop.IsCancellationRequested)
            {
                await db.ExecuteAsync($"INSERT INTO {t} VALUES ({id++}, 'live')");
            }

            return id - 100_000;
        });

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={start}"));
        await resumed.ReceiveTypeAsync("subscribed");
        var replayed = 0;
        var live = 0;
        while (replayed < 1500)
        {
            var id = (await resumed.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32();
            if (id >= 100_000)
            {
                live++;
            }
            else
            {
                replayed++;
            }
        }

        await stop.CancelAsync();
        var written = await writer;
        written.Should().BeGreaterThan(0);
        calls.Should().BeGreaterThan(1500);
        mismatches.Should().Be(0, "the hook must judge the change it is asked about, not one another thread set meanwhile");
    }

    [Fact]
    public async Task RowReassignedToAnotherUser_NewOwnerNeverSeesThePreviousValues()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, owner text, secret text");
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeChange = context =>
                context.Change.Row is { } row && row.GetProperty("owner").GetString() == context.HttpContext.Request.Query["user"].ToString());
        await using var user1 = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&user=u1"));
        await using var user2 = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&user=u2"));
        await user1.ReceiveTypeAsync("subscribed");
        await user2.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'u1', 'user 1 private notes')");
        (await user1.ReceiveAsync()).GetProperty("operation").GetString().Should().Be("INSERT");
        await db.ExecuteAsync($"UPDATE {t} SET owner = 'u2', secret = 'handed over' WHERE id = 1");
        await db.ExecuteAsync($"UPDATE {t} SET secret = 'user 2 edit' WHERE id = 1");

        var moved = await user2.ReceiveAsync();
        moved.GetProperty("operation").GetString().Should().Be("UPDATE");
        moved.GetProperty("data").GetProperty("secret").GetString().Should().Be("handed over");
        moved.TryGetProperty("old", out _).Should().BeFalse("the old row was user 1's: " + moved);
        moved.ToString().Should().NotContain("private notes");

        // A later update of a row that was already user 2's keeps its old values.
        var edit = await user2.ReceiveAsync();
        edit.GetProperty("old").GetProperty("secret").GetString().Should().Be("handed over");
        edit.GetProperty("data").GetProperty("secret").GetString().Should().Be("user 2 edit");

        // User 1 does not get the row's new values.
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'u1', 'next')");
        (await user1.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
    }
}
