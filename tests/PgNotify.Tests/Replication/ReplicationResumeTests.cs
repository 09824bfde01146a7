using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>Resuming with the replication source: from another instance's history, and an app restart from its slot.</summary>
public sealed class ReplicationResumeTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    [Fact]
    public async Task TwoInstances_ClientResumesOnTheOther_GetsExactlyWhatItMissed_WithTheSamePositions()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var a = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await using var b = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await using var witness = await TestSocket.ConnectAsync(a.SocketUri("tables=" + table)); // stays on A throughout
        await witness.ReceiveTypeAsync("subscribed");

        long last;
        await using (var socket = await TestSocket.ConnectAsync(a.SocketUri("tables=" + table)))
        {
            await socket.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'seen' FROM generate_series(1, 10) g");
            last = 0;
            for (var i = 1; i <= 10; i++)
            {
                var frame = await socket.ReceiveAsync();
                frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
                last = frame.GetProperty("position").GetInt64();
            }
        }

        for (var i = 11; i <= 20; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'missed')"); // one transaction each
        }

        var onA = new Dictionary<int, long>();
        for (var i = 1; i <= 20; i++)
        {
            var frame = await witness.ReceiveAsync();
            onA[frame.GetProperty("data").GetProperty("id").GetInt32()] = frame.GetProperty("position").GetInt64();
        }

        await using var resumed = await TestSocket.ConnectAsync(b.SocketUri($"tables={table}&since={last}"));
        await resumed.ReceiveTypeAsync("subscribed");
        for (var i = 11; i <= 20; i++)
        {
            var frame = await resumed.ReceiveAsync();
            frame.GetProperty("type").GetString().Should().Be("change");
            frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
            frame.GetProperty("position").GetInt64().Should().Be(onA[i], "positions come from the WAL: the same on every instance");
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (21, 'live')");
        (await resumed.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(21, "no duplicate and no gap at the switch to live");
    }

    [Fact]
    public async Task Resume_OlderThanTheHistory_GetsPositionExpired()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o =>
            {
                ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance());
                o.ReplicationHistorySize = 3;
            });
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");
        var positions = new List<long>();
        for (var i = 1; i <= 6; i++)
        {
            await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'x')");
            positions.Add((await socket.ReceiveAsync()).GetProperty("position").GetInt64());
        }

        await using var tooOld = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={positions[0]}"));
        await tooOld.ReceiveTypeAsync("subscribed");
        var resync = await tooOld.ReceiveAsync();
        resync.GetProperty("type").GetString().Should().Be("resync");
        resync.GetProperty("reason").GetString().Should().Be("position_expired");

        await using var recent = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={positions[2]}"));
        await recent.ReceiveTypeAsync("subscribed");
        for (var i = 4; i <= 6; i++)
        {
            (await recent.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
        }
    }

    [Fact]
    public async Task AppStoppedAndRestartedMidStream_ResumesFromItsSlot_NothingLost()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var instance = ReplicationFixture.NewInstance();
        const int Rows = 2000;
        var writer = Task.CompletedTask;
        var first = new List<PgChange>();
        await using (var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => ReplicationFixture.UseReplication(o, instance)))
        {
            await host.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token); // the slot exists
            writer = Task.Run(async () =>
            {
                for (var i = 1; i <= Rows; i++)
                {
                    await db.ExecuteAsync($"INSERT INTO {t} VALUES ({i}, 'x')"); // one commit each, going on across the restart
                }
            });
            while (first.Count < 100)
            {
                first.Add(await host.Changes.NextChangeAsync(TimeSpan.FromSeconds(30)));
            }
        } // stopped mid-stream: the writer goes on

        var second = new List<PgChange>();
        await using (var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => ReplicationFixture.UseReplication(o, instance)))
        {
            await writer;
            var seen = first.Select(Id).ToHashSet();
            while (!Enumerable.Range(1, Rows).All(seen.Contains))
            {
                var change = await host.Changes.NextChangeAsync(TimeSpan.FromSeconds(30));
                second.Add(change);
                seen.Add(Id(change));
            }
        }

        var maxFirst = first.Max(Id);
        second.Select(Id).Should().Contain(Enumerable.Range(maxFirst + 1, Rows - maxFirst), "everything after the stop comes from the slot");
        first.Select(c => c.Position!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        second.Select(c => c.Position!.Value).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        second.Select(Id).Should().BeInAscendingOrder("each instance delivers in commit order");
    }

    private static int Id(PgChange change) => change.Data!.Value.GetProperty("id").GetInt32();
}
