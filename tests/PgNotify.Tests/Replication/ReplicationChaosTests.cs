using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;
using Npgsql;
using PgNotify.Tests.Core;
using PgNotify.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PgNotify.Tests.Replication;

/// <summary>
/// The issue's chaos test for the replication source: 4 writers make single-row commits to 3 tables while the
/// walsender is terminated again and again and PostgreSQL restarts once. Every socket must get every change exactly
/// once, each row's changes in commit order, checked against the tables' final state. CI runs a scaled version
/// (PGNOTIFY_REPLICATION_CHAOS_COMMITS, default 6,000, and PGNOTIFY_REPLICATION_CHAOS_KILLS, default 5);
/// scripts/chaos-replication.sh runs the full size (50,000 commits, 20 kills).
/// </summary>
[Collection(ServerRestartCollection.Name)]
public sealed class ReplicationChaosTests(ReplicationFixture db, ITestOutputHelper output) : IClassFixture<ReplicationFixture>
{
    private static int Commits => int.TryParse(Environment.GetEnvironmentVariable("PGNOTIFY_REPLICATION_CHAOS_COMMITS"), out var n) ? n : 6_000;

    private static int Kills => int.TryParse(Environment.GetEnvironmentVariable("PGNOTIFY_REPLICATION_CHAOS_KILLS"), out var n) ? n : 5;

    [SkippableFact]
    public async Task WritersWalSenderKillsAndARestart_EverySocketGetsEveryChangeExactlyOnceInCommitOrderPerRow()
    {
        Skip.IfNot(db.Server.CanStopAndStart, $"The server from {db.Server.Source} cannot be restarted by the tests (set PGNOTIFY_TEST_STOP_COMMAND and PGNOTIFY_TEST_START_COMMAND).");
        var tables = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            tables.Add(await db.CreateTableAsync("id int PRIMARY KEY, n int NOT NULL DEFAULT 0"));
        }

        var instance = ReplicationFixture.NewInstance();
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), tables,
            ws => ws.SendQueueCapacity = 200_000,
            o => ReplicationFixture.UseReplication(o, instance));
        var query = "tables=" + string.Join(",", tables);
        var steady = new List<Receiver> { await Receiver.StartAsync(host.SocketUri(query)), await Receiver.StartAsync(host.SocketUri(query)) };
        var resumer = await Receiver.StartAsync(host.SocketUri(query));

        var total = Commits;
        var committed = 0;
        // Writers wait three quarters of the way in until the restart is done, so that it always falls among the writes
        // however fast they run (on an idle machine 6,000 commits can be over before a pacing loop sees half of them).
        var restartDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() => WriteAsync(w, total / 4, tables, () => Interlocked.Increment(ref committed), restartDone.Task))).ToList();
        var kills = 0;
        var restarted = false;
        while (writers.Any(w => !w.IsCompleted))
        {
            await Task.Delay(100); // pacing the chaos, not waiting for an outcome
            var progress = Volatile.Read(ref committed) * 1.0 / total;
            if (kills < Kills && progress > kills / (Kills + 2.0) && await TryTerminateAsync("pgnotify_" + instance))
            {
                kills++;
            }

            if (!restarted && progress > 0.5)
            {
                restarted = true;
                await db.Server.StopAsync();
                await db.Server.StartAsync();
                NpgsqlConnection.ClearAllPools();
                db.DataSource.Clear();
                restartDone.TrySetResult();
            }

            if (resumer.Disconnects == 0 && progress > 0.3)
            {
                await resumer.DisconnectAsync();
                await Task.Delay(1000); // away for a second while changes go on
                await resumer.ResumeAsync(host.SocketUri($"{query}&since={resumer.LastPosition}"));
            }
        }

        await Task.WhenAll(writers);
        while (kills < Kills)
        {
            await ChangeStreamExtensions.WaitUntilAsync(() => host.Status.State == PgListenerState.Listening, TimeSpan.FromSeconds(30));
            if (await TryTerminateAsync("pgnotify_" + instance))
            {
                kills++;
            }
        }

        restarted.Should().BeTrue();
        var rows = new Dictionary<(string, int), int>();
        foreach (var table in tables)
        {
            await using var command = db.DataSource.CreateCommand($"SELECT id, n FROM {PostgresFixture.Quote(table)}");
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows[(table, reader.GetInt32(0))] = reader.GetInt32(1);
            }
        }

        var expected = rows.Count + rows.Values.Sum();
        output.WriteLine($"{total} commits, {rows.Count} rows, {expected} changes, {kills} walsender kills, 1 restart");
        expected.Should().BeGreaterThanOrEqualTo(total);
        var receivers = steady.Append(resumer).ToList();
        foreach (var receiver in receivers)
        {
            try
            {
                await ChangeStreamExtensions.WaitUntilAsync(() => receiver.Count >= expected, TimeSpan.FromSeconds(90));
            }
            catch (TimeoutException)
            {
                // Every socket's state when the wait gave up, not when it began.
                throw new TimeoutException($"Not every socket got all {expected} changes in 90 s: "
                    + string.Join("; ", receivers.Select((r, i) => (i < steady.Count ? $"steady socket {i}" : "the resumer") + ": " + r.Describe()))
                    + $"; listener {host.Status.State}");
            }
        }

        await Task.Delay(300); // then nothing more may arrive: extras would show below
        foreach (var receiver in steady.Append(resumer))
        {
            receiver.Verify(rows, expected);
            await receiver.DisposeAsync();
        }

        resumer.Disconnects.Should().Be(1);
    }

    private async Task<bool> TryTerminateAsync(string slot)
    {
        try
        {
            return await db.TerminateWalSenderAsync(slot) > 0;
        }
        catch (NpgsqlException)
        {
            db.DataSource.Clear();
            return false;
        }
    }

    private async Task WriteAsync(int writer, int count, List<string> tables, Func<int> onCommitted, Task restartDone)
    {
        await using var source = NpgsqlDataSource.Create(db.ConnectionString);
        var random = new Random(writer);
        var ids = tables.ToDictionary(t => t, _ => new List<int>());
        for (var k = 0; k < count; k++)
        {
            if (k == count * 3 / 4)
            {
                await restartDone.WaitAsync(TimeSpan.FromMinutes(2));
            }

            var table = tables[random.Next(tables.Count)];
            var update = k % 4 == 3 && ids[table].Count > 0;
            var id = update ? ids[table][random.Next(ids[table].Count)] : (writer * 10_000_000) + k;
            var sql = update
                ? $"UPDATE {PostgresFixture.Quote(table)} SET n = n + 1 WHERE id = $1"
                : $"INSERT INTO {PostgresFixture.Quote(table)} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    await using var command = source.CreateCommand(sql);
                    command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = id });
                    await command.ExecuteNonQueryAsync();
                    break;
                }
                catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException && attempt < 600)
                {
                    // The server restarts: the outcome is unknown, so retry (an insert is idempotent; an update that
                    // applied twice shows in the final state).
                    source.Clear();
                    await Task.Delay(50);
                }
            }

            if (!update)
            {
                ids[table].Add(id);
            }

            onCommitted();
        }
    }

    private sealed class Receiver : IAsyncDisposable
    {
        private readonly ConcurrentQueue<(long Position, string Table, string Operation, int Id, int N)> _changes = new();
        private readonly ConcurrentQueue<string> _others = new();
        private TestSocket _socket = null!;
        private Task _loop = Task.CompletedTask;
        private CancellationTokenSource _stop = new();

        public int Count => _changes.Count;

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

                if (frame.GetProperty("type").GetString() != "change")
                {
                    _others.Enqueue(frame.ToString());
                    continue;
                }

                var row = frame.TryGetProperty("data", out var data) ? data : frame.GetProperty("old");
                var position = frame.GetProperty("position").GetInt64();
                _changes.Enqueue((position, frame.GetProperty("table").GetString()!, frame.GetProperty("operation").GetString()!,
                    row.GetProperty("id").GetInt32(), row.GetProperty("n").GetInt32()));
                LastPosition = position;
            }
        }

        /// <summary>What this socket received, for a failure message.</summary>
        public string Describe()
        {
            var changes = _changes.ToList();
            var others = _others.ToList();
            return $"{changes.Count} changes (last position {(changes.Count > 0 ? changes[^1].Position : 0)}), {Disconnects} disconnects, "
                + $"{others.Count} other frames{(others.Count > 0 ? ": " + string.Join(" ", others.Take(5)) : "")}, loop {(_loop.IsCompleted ? "ended" : "running")}";
        }

        public void Verify(Dictionary<(string, int), int> rows, int expected)
        {
            _others.Should().BeEmpty("nothing may be lost, so no resync or error is ever needed");
            var changes = _changes.ToList();
            changes.Should().HaveCount(expected, "every change exactly once");
            changes.Select(c => c.Position).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
            var inserted = changes.Where(c => c.Operation == "INSERT").Select(c => (c.Table, c.Id)).ToHashSet();
            inserted.Should().HaveCount(rows.Count);
            inserted.SetEquals(rows.Keys).Should().BeTrue("the INSERT frames name exactly the rows in the tables");
            foreach (var group in changes.Where(c => c.Operation == "UPDATE").GroupBy(c => (c.Table, c.Id)))
            {
                group.Select(c => c.N).Should().Equal(Enumerable.Range(1, rows[group.Key]), $"row {group.Key}'s updates in commit order");
            }
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
