using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Npgsql;
using PgNotify.Tests.Core;
using PgNotify.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PgNotify.Tests.Lossless;

/// <summary>
/// The issue's acceptance test: 4 writers commit 50,000 single-row transactions (some deliberately committing out of
/// position order) while the listener's backend is terminated 20 times and PostgreSQL is restarted once. Every socket
/// must get every change exactly once, in commit order per row; a client away for 2 seconds resumes exactly.
/// </summary>
[Collection(ServerRestartCollection.Name)]
public sealed class LosslessChaosTests(PostgresFixture db, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private static int Transactions => int.TryParse(Environment.GetEnvironmentVariable("PGNOTIFY_CHAOS_TRANSACTIONS"), out var n) ? n : 50_000;

    [SkippableFact]
    public async Task WritersKillsAndARestart_EverySocketGetsEveryChangeExactlyOnceInCommitOrderPerRow()
    {
        Skip.IfNot(db.Server.CanStopAndStart, $"The server from {db.Server.Source} cannot be restarted by the tests (set PGNOTIFY_TEST_STOP_COMMAND and PGNOTIFY_TEST_START_COMMAND).");
        var table = await db.CreateTableAsync("id int PRIMARY KEY, writer int NOT NULL, n int NOT NULL DEFAULT 0");
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.SendQueueCapacity = 200_000,
            o => o.LosslessDelivery = true);

        var steady = new List<Receiver>();
        for (var i = 0; i < 3; i++)
        {
            steady.Add(await Receiver.StartAsync(host.SocketUri("tables=" + table)));
        }

        var resumer = await Receiver.StartAsync(host.SocketUri("tables=" + table));

        // Writers.
        var total = Transactions;
        var committed = 0;
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() => WriteAsync(w, total / 4, t, () => Interlocked.Increment(ref committed)))).ToList();

        // Chaos: 20 listener terminations spread over the run, and one full server restart in the middle.
        var kills = 0;
        var restarted = false;
        while (writers.Any(w => !w.IsCompleted))
        {
            await Task.Delay(150);
            var progress = Volatile.Read(ref committed) * 1.0 / total;
            if (kills < 20 && progress > kills / 22.0)
            {
                if (await TryTerminateListenerAsync())
                {
                    kills++;
                }
            }

            if (!restarted && progress > 0.5)
            {
                restarted = true;
                await db.Server.StopAsync();
                await Task.Delay(1000);
                await db.Server.StartAsync();
                NpgsqlConnection.ClearAllPools();
                db.DataSource.Clear();
            }

            if (resumer.Disconnects == 0 && progress > 0.3)
            {
                // A client goes away for 2 seconds mid-stream, then resumes from the last position it saw.
                await resumer.DisconnectAsync();
                await Task.Delay(2000);
                await resumer.ResumeAsync(host.SocketUri($"tables={table}&since={resumer.LastPosition}"));
            }
        }

        await Task.WhenAll(writers);
        while (kills < 20)
        {
            // Short runs (PGNOTIFY_CHAOS_TRANSACTIONS) finish writing first: the remaining kills still test catch-up.
            await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.State == PgListenerState.Listening, TimeSpan.FromSeconds(30));
            if (await TryTerminateListenerAsync())
            {
                kills++;
            }
        }

        restarted.Should().BeTrue();
        kills.Should().Be(20);

        // The truth: the table itself.
        var rows = new Dictionary<int, int>();
        await using (var command = db.DataSource.CreateCommand($"SELECT id, n FROM {t}"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rows[reader.GetInt32(0)] = reader.GetInt32(1);
            }
        }

        var expectedChanges = rows.Count + rows.Values.Sum();
        output.WriteLine($"{rows.Count} rows, {rows.Values.Sum()} updates, {expectedChanges} changes; {kills} kills; listener reconnects {host.Status.ReconnectCount}");
        expectedChanges.Should().BeGreaterThanOrEqualTo(total, "every transaction made one change (a retried update may have made two)");

        var logged = new List<long>();
        await using (var command = db.DataSource.CreateCommand("SELECT position FROM pgnotify.change_log ORDER BY position"))
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                logged.Add(reader.GetInt64(0));
            }
        }

        // A last row, written after everything counted above: once a socket has it, every change before it has
        // arrived (frames come in position order), so extras or duplicates would be in hand, with no waiting on a clock.
        await db.ExecuteAsync($"INSERT INTO {t} (id, writer) VALUES (-1, -1)");
        rows[-1] = 0;
        expectedChanges++;

        var index = 0;
        foreach (var receiver in steady.Append(resumer))
        {
            index++;
            try
            {
                await ChangeStreamExtensions.WaitUntilAsync(() => receiver.Count >= expectedChanges, TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException)
            {
                var missing = logged.Except(receiver.Positions).ToList();
                throw new TimeoutException($"socket {index} received {receiver.Count} of {expectedChanges} changes (log has {logged.Count}); missing {missing.Count}: {string.Join(",", missing.Take(30))}; last {receiver.LastPosition}; listener delivered through {host.Status.DeliveredPosition}");
            }

            await ChangeStreamExtensions.WaitUntilAsync(() => receiver.HasRow(-1), TimeSpan.FromSeconds(60), because: "the last row arrives after all the others");
            receiver.Verify(rows, expectedChanges);
        }

        resumer.Disconnects.Should().Be(1);
        foreach (var receiver in steady.Append(resumer))
        {
            await receiver.DisposeAsync();
        }
    }

    private async Task<bool> TryTerminateListenerAsync()
    {
        try
        {
            return await db.TerminateListenersAsync() > 0;
        }
        catch (NpgsqlException)
        {
            db.DataSource.Clear();
            return false;
        }
    }

    private async Task WriteAsync(int writer, int count, string t, Func<int> onCommitted)
    {
        await using var source = NpgsqlDataSource.Create(db.ConnectionString);
        var random = new Random(writer);
        var ids = new List<int>();
        for (var k = 0; k < count; k++)
        {
            var update = k % 5 == 4 && ids.Count > 0;
            var id = update ? ids[random.Next(ids.Count)] : (writer * 10_000_000) + k;
            var slow = k % 50 == 0; // holds a low position while others commit higher ones
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await using var connection = await source.OpenConnectionAsync();
                    await using var tx = await connection.BeginTransactionAsync();
                    var sql = update
                        ? $"UPDATE {t} SET n = n + 1 WHERE id = $1"
                        : $"INSERT INTO {t} (id, writer) VALUES ($1, {writer}) ON CONFLICT (id) DO NOTHING";
                    await using (var command = new NpgsqlCommand(sql, connection, tx))
                    {
                        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = id });
                        await command.ExecuteNonQueryAsync();
                    }

                    if (slow)
                    {
                        await using var pause = new NpgsqlCommand("SELECT pg_sleep(0.02)", connection, tx);
                        await pause.ExecuteNonQueryAsync();
                    }

                    await tx.CommitAsync();
                    break;
                }
                catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException && attempt < 600)
                {
                    // The server is restarting: the outcome of this transaction is unknown, so it is retried
                    // (an insert is idempotent; an update may apply twice, which the final state then shows).
                    source.Clear();
                    await Task.Delay(50);
                }
            }

            if (!update)
            {
                ids.Add(id);
            }

            onCommitted();
        }
    }

    /// <summary>A real WebSocket client collecting change frames.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly ConcurrentQueue<(long Position, string Operation, int Id, int N)> _changes = new();
        private readonly List<string> _others = [];
        private TestSocket _socket = null!;
        private Task _loop = Task.CompletedTask;
        private CancellationTokenSource _stop = new();

        public int Count => _changes.Count;

        public bool HasRow(int id) => _changes.Any(c => c.Id == id);

        public IEnumerable<long> Positions => _changes.Select(c => c.Position);

        public long LastPosition { get; private set; }

        public int Disconnects { get; private set; }

        public static async Task<Receiver> StartAsync(Uri uri)
        {
            var receiver = new Receiver();
            await receiver.ResumeAsync(uri);
            return receiver;
        }

        public async Task ResumeAsync(Uri uri)
        {
            _socket = await TestSocket.ConnectAsync(uri);
            var ack = await _socket.ReceiveAsync();
            ack.GetProperty("type").GetString().Should().Be("subscribed");
            if (LastPosition == 0)
            {
                // A first subscription has everything through the head position its answer carries, as the JS and
                // .NET clients take it: a client that saw no change before it went away resumes from there, not from 0
                // (which the replication source, holding only what it streamed itself, rightly calls expired).
                var head = ack.GetProperty("position");
                LastPosition = head.ValueKind == JsonValueKind.String ? long.Parse(head.GetString()!) : head.GetInt64();
            }

            _stop = new CancellationTokenSource();
            _loop = Task.Run(() => LoopAsync(_socket, _stop.Token));
        }

        public async Task DisconnectAsync()
        {
            Disconnects++;
            await _stop.CancelAsync();
            _socket.Socket.Abort();
            await _loop;
            _socket.Socket.Dispose();
        }

        private async Task LoopAsync(TestSocket socket, CancellationToken stop)
        {
            // No receive timeout: cancelling a WebSocket receive aborts the socket. Stopping aborts it instead.
            while (!stop.IsCancellationRequested)
            {
                JsonElement frame;
                try
                {
                    frame = await socket.ReceiveAsync(TimeSpan.FromMinutes(10));
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or TimeoutException)
                {
                    return;
                }

                var type = frame.GetProperty("type").GetString()!;
                if (type != "change")
                {
                    lock (_others)
                    {
                        _others.Add(frame.ToString());
                    }

                    continue;
                }

                var row = frame.TryGetProperty("data", out var data) ? data : frame.GetProperty("old");
                var position = frame.GetProperty("position").GetInt64();
                _changes.Enqueue((position, frame.GetProperty("operation").GetString()!, row.GetProperty("id").GetInt32(), row.GetProperty("n").GetInt32()));
                LastPosition = position;
            }
        }

        public void Verify(Dictionary<int, int> rows, int expectedChanges)
        {
            lock (_others)
            {
                _others.Should().BeEmpty("nothing may be lost, so no resync or error is ever needed");
            }

            var changes = _changes.ToList();
            changes.Should().HaveCount(expectedChanges, "every change exactly once");
            changes.Select(c => c.Position).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
            // Set comparisons: FluentAssertions' BeEquivalentTo is quadratic on 40,000 items.
            var inserted = changes.Where(c => c.Operation == "INSERT").Select(c => c.Id).ToList();
            inserted.Should().HaveCount(rows.Count);
            inserted.ToHashSet().SetEquals(rows.Keys).Should().BeTrue("the INSERT frames name exactly the rows in the table");
            foreach (var group in changes.Where(c => c.Operation == "UPDATE").GroupBy(c => c.Id))
            {
                // Per row, in commit order: the counter went 1, 2, 3, ... up to its final value.
                group.Select(c => c.N).Should().Equal(Enumerable.Range(1, rows[group.Key]), $"row {group.Key}'s updates in commit order");
            }

            changes.Count(c => c.Operation == "UPDATE").Should().Be(rows.Values.Sum());
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _socket.Socket.Abort();
            await _loop;
            _socket.Socket.Dispose();
        }
    }
}
