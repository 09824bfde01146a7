using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Lossless;

/// <summary>Clients resume from the last position they saw, over real sockets.</summary>
public sealed class ResumeTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Welcome_SaysLossless_AndChangeFramesCarryIncreasingPositions()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.LosslessDelivery = true);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table), expectWelcome: false);

        var welcome = await socket.ReceiveAsync();
        welcome.GetProperty("lossless").GetBoolean().Should().BeTrue();
        await socket.ReceiveTypeAsync("subscribed");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'a'), (2, 'b')");

        var first = (await socket.ReceiveAsync()).GetProperty("position").GetInt64();
        var second = (await socket.ReceiveAsync()).GetProperty("position").GetInt64();
        second.Should().BeGreaterThan(first);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Reconnect_WithLastPosition_GetsExactlyWhatItMissed_ThenLiveChanges(bool sinceInQuery)
    {
        var table = await db.CreateTableAsync();
        var other = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table, other], configure: o => o.LosslessDelivery = true);

        long last;
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table)))
        {
            await socket.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'seen' FROM generate_series(1, 10) g");
            for (var i = 1; i <= 10; i++)
            {
                (await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(i);
            }

            await db.ExecuteAsync($"INSERT INTO {t} VALUES (11, 'seen too')");
            last = (await socket.ReceiveAsync()).GetProperty("position").GetInt64();
        }

        // While the client is away: its table changes, and another table it does not want changes too.
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'missed' FROM generate_series(12, 30) g");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(other)} VALUES (1, 'not subscribed')");
        await db.ExecuteAsync($"UPDATE {t} SET name = 'missed update' WHERE id = 5");

        await using var resumed = sinceInQuery
            ? await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={last}"))
            : await TestSocket.ConnectAsync(host.SocketUri());
        if (!sinceInQuery)
        {
            await resumed.SendJsonAsync(new { type = "subscribe", id = "resume", tables = new[] { table }, since = last });
        }

        (await resumed.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var ids = new List<(string, int)>();
        for (var i = 0; i < 20; i++)
        {
            var frame = await resumed.ReceiveAsync();
            frame.GetProperty("type").GetString().Should().Be("change");
            frame.GetProperty("position").GetInt64().Should().BeGreaterThan(last);
            ids.Add((frame.GetProperty("operation").GetString()!, frame.GetProperty("data").GetProperty("id").GetInt32()));
        }

        ids.Should().Equal(Enumerable.Range(12, 19).Select(i => ("INSERT", i)).Append(("UPDATE", 5)));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (31, 'live')");
        (await resumed.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(31, "no duplicate and no gap at the switch to live");
    }

    [Fact]
    public async Task Resume_AfterTheServerClosedThePooledConnections_ReplaysOnNewOnes()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.LosslessDelivery = true);

        long last;
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table)))
        {
            await socket.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'seen')");
            last = (await socket.ReceiveAsync()).GetProperty("position").GetInt64();
        }

        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'missed' FROM generate_series(2, 20) g");
        await using (var live = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table)))
        {
            // Once a live socket has them, the log reader is done with them and its connection sits in the pool.
            await live.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {t} VALUES (21, 'missed too')");
            while ((await live.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32() != 21)
            {
                // Some of 2 to 20 may still come live to it before 21.
            }
        }

        // The server closes PgNotify's pooled connections (the change log's reader and the replays share them), as a
        // restart or a failover would; the reader's next poll and the replay each find one closed.
        (await db.ScalarAsync<long>("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            + "WHERE application_name = 'PgNotify' AND datname = current_database()) t")).Should().BeGreaterThan(0);

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={last}"));
        (await resumed.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        for (var id = 2; id <= 21; id++)
        {
            var frame = await resumed.ReceiveAsync();
            frame.GetProperty("type").GetString().Should().Be("change", "the replay reads on a new connection: no close, no resync");
            frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
        }
    }

    [Fact]
    public async Task Resume_WhoseReplayFailsInTheDatabase_ClosesWith1011AsADatabaseError_AndTheNextResumeGetsEverything()
    {
        const string PrunedThroughQuery = "SELECT pruned_through FROM pgnotify.change_log_state WHERE id = 1";
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var logs = new LogCapture();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            configure: o => o.LosslessDelivery = true, configureBuilder: b => b.Logging.AddProvider(logs));

        long last;
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table)))
        {
            await socket.ReceiveTypeAsync("subscribed");
            await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'seen')");
            last = (await socket.ReceiveAsync()).GetProperty("position").GetInt64();
        }

        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'missed' FROM generate_series(2, 20) g");

        await using (var locker = await db.DataSource.OpenConnectionAsync())
        {
            // The replay's first read waits behind this lock, and the database cancels it there, as a
            // statement_timeout or an operator would: a database error that a new connection would not cure.
            await using var transaction = await locker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE pgnotify.change_log_state IN ACCESS EXCLUSIVE MODE", locker, transaction))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            await using var failed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={last}"));
            (await failed.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
            var cancelled = 0L;
            for (var attempt = 0; attempt < 200 && cancelled == 0; attempt++)
            {
                await Task.Delay(25);
                cancelled = await db.ScalarAsync<long>(
                    "SELECT count(*) FROM (SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'PgNotify' "
                    + "AND datname = current_database() AND wait_event_type = 'Lock' AND query = $1) c", PrunedThroughQuery);
            }

            cancelled.Should().Be(1, "the replay's read waits for the lock");
            (await failed.ReceiveCloseAsync()).Should().Be(WebSocketCloseStatus.InternalServerError);
            failed.Socket.CloseStatusDescription.Should().Be("change log unavailable; resume again");
            await transaction.RollbackAsync();
        }

        var replayFailed = logs.WithId(2133).Should().ContainSingle().Subject;
        replayFailed.Level.Should().Be(LogLevel.Warning);
        replayFailed.Exception.Should().BeAssignableTo<PostgresException>().Which.SqlState.Should().Be(PostgresErrorCodes.QueryCanceled);
        logs.WithId(2109).Should().BeEmpty("a database error is not taken for a bug of ours");

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={last}"));
        (await resumed.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        for (var id = 2; id <= 20; id++)
        {
            var frame = await resumed.ReceiveAsync();
            frame.GetProperty("type").GetString().Should().Be("change");
            frame.GetProperty("data").GetProperty("id").GetInt32().Should().Be(id);
        }
    }

    [Fact]
    public async Task Resume_WhileChangesKeepComing_HasNoGapAndNoDuplicateAtTheSwitchover()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.LosslessDelivery = true);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (0, 'before')");
        var start = await db.ScalarAsync<long>("SELECT max(position) FROM pgnotify.change_log");

        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var i = 1;
            while (!stop.IsCancellationRequested && i <= 3000)
            {
                await db.ExecuteAsync($"INSERT INTO {t} VALUES ($1, 'x')", i++);
            }

            return i - 1;
        });

        await Task.Delay(300); // resume in the middle of the stream, with a backlog to replay and live changes arriving
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={start}"));
        await socket.ReceiveTypeAsync("subscribed");
        await Task.Delay(300);
        await stop.CancelAsync();
        var written = await writer;

        var received = new List<int>();
        while (received.Count < written)
        {
            received.Add((await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32());
        }

        received.Should().Equal(Enumerable.Range(1, written));
    }

    [Fact]
    public async Task Resume_WhileTheFanOutLagsBehindTheLog_SendsNoDuplicates()
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        // A slow AuthorizeChange hook for one socket holds the fan-out back, so the log reader runs ahead of it: the
        // replay then sends changes that the fan-out routes again later.
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeChange = context =>
            {
                if (context.HttpContext.Request.Query.ContainsKey("slow"))
                {
                    Thread.Sleep(30);
                }

                return true;
            },
            o => o.LosslessDelivery = true);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (0, 'before')");
        var start = await db.ScalarAsync<long>("SELECT max(position) FROM pgnotify.change_log");
        await using var slow = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&slow=1"));
        await slow.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'x' FROM generate_series(1, 40) g");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.DeliveredPosition >= start + 40);

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={start}"));
        await resumed.ReceiveTypeAsync("subscribed");
        var ids = new List<int>();
        for (var i = 0; i < 40; i++)
        {
            ids.Add((await resumed.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32());
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (41, 'live')");
        ids.Add((await resumed.ReceiveAsync(TimeSpan.FromSeconds(30))).GetProperty("data").GetProperty("id").GetInt32());
        ids.Should().Equal(Enumerable.Range(1, 41), "the replay's changes are not sent again when the fan-out catches up");
    }

    [Fact]
    public async Task Resume_EndingWhileTheFanOutRoutesAChangeTheReplaySent_SendsItOnce()
    {
        // The interleaving the replication cluster test met after a restart, forced step by step: the fan-out judges a
        // change to be for the resuming socket (above the client's position) while the replay still runs, and queues it
        // only after the replay, which had sent it too, has ended. The AuthorizeChange hook runs between the two.
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        var wait = TimeSpan.FromSeconds(30);
        var releaseFanOut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var replayAtSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var fanOutAtSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var replayEnded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondCalls = 0;
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.AuthorizeChange = context =>
            {
                var id = context.Row!.Value.GetProperty("id").GetInt32();
                var query = context.HttpContext.Request.Query;
                if (query.ContainsKey("hold") && id == 1)
                {
                    // The fan-out stops at the first change: the second is in the log and delivered, not routed yet.
                    releaseFanOut.Task.Wait(wait).Should().BeTrue();
                }
                else if (query.ContainsKey("resume") && id == 2)
                {
                    if (Interlocked.Increment(ref secondCalls) == 1)
                    {
                        // The replay, first (the fan-out is held until this call): it goes on (sends the change and
                        // ends) once the fan-out judged the change too.
                        replayAtSecond.TrySetResult();
                        fanOutAtSecond.Task.Wait(wait).Should().BeTrue();
                    }
                    else
                    {
                        // The fan-out: the change matched the resuming socket; it is queued after the replay ended.
                        fanOutAtSecond.TrySetResult();
                        replayEnded.Task.Wait(wait).Should().BeTrue();
                    }
                }

                return true;
            },
            o => o.LosslessDelivery = true);

        await using var holding = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&hold=1"));
        var start = (await holding.ReceiveTypeAsync("subscribed")).GetProperty("position").GetInt64();
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'routed slowly')");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'replayed, and judged by the fan-out meanwhile')");
        var second = await db.ScalarAsync<long>("SELECT max(position) FROM pgnotify.change_log");
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.DeliveredPosition >= second);

        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={start}&resume=1"));
        // Handled after the resume (requests take turns): its answer says the replay has ended.
        await resumed.SendJsonAsync(new { type = "unsubscribe", id = "after-replay", tables = new[] { "not_subscribed" } });
        await resumed.ReceiveTypeAsync("subscribed");
        await replayAtSecond.Task.WaitAsync(wait);
        releaseFanOut.SetResult();

        var ids = new List<int>();
        JsonElement frame;
        while ((frame = await resumed.ReceiveAsync()).GetProperty("type").GetString() == "change")
        {
            ids.Add(frame.GetProperty("data").GetProperty("id").GetInt32());
        }

        frame.GetProperty("type").GetString().Should().Be("unsubscribed");
        fanOutAtSecond.Task.IsCompleted.Should().BeTrue("the fan-out judged the second change while the replay ran");
        replayEnded.SetResult();
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (3, 'live')");
        ids.Add((await resumed.ReceiveAsync(wait)).GetProperty("data").GetProperty("id").GetInt32());
        ids.Should().Equal([1, 2, 3], "the change the replay sent is not sent again by the fan-out");
    }

    [Fact]
    public async Task PositionOlderThanRetention_GetsResync()
    {
        var table = await db.CreateTableAsync();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o =>
        {
            o.LosslessDelivery = true;
            o.ChangeLogMaxRows = 5;
            o.MaintenanceInterval = TimeSpan.FromMilliseconds(200);
        });
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'x' FROM generate_series(1, 50) g");
        // This table's positions (the log is shared with the tests running meanwhile).
        const string OfTable = "FROM pgnotify.change_log WHERE payload::jsonb->>'table' = $1";
        var first = await db.ScalarAsync<long>("SELECT min(position) " + OfTable, table) - 1;
        var last = await db.ScalarAsync<long>("SELECT max(position) " + OfTable, table);
        await ChangeStreamExtensions.WaitUntilAsync(() => db.ScalarAsync<long>("SELECT pruned_through FROM pgnotify.change_log_state").GetAwaiter().GetResult() > first + 10,
            because: "the listener prunes the log down to its last 5 changes");
        // The 50 rows are behind the head position the socket will be given, so only row 51 comes after the resync.
        await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.DeliveredPosition >= last, because: "the listener delivers the 50 rows");

        await using var socket = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={first}"));
        await socket.ReceiveTypeAsync("subscribed");
        var resync = await socket.ReceiveAsync();
        resync.GetProperty("type").GetString().Should().Be("resync");
        resync.GetProperty("reason").GetString().Should().Be("position_expired");

        // The socket stays subscribed and live.
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (51, 'live')");
        (await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(51);
    }
}
