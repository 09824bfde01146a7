using System.Collections.Concurrent;
using System.Text.Json;
using Npgsql;
using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.WebSockets;
using Xunit.Abstractions;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// The load of the snapshot exactness tests (issue #13), for either source: 4 writers change 2,000 rows at about 1,000
/// changes a second for 20 s while 50 sockets subscribe with a snapshot at random moments, half of them filtered; when
/// the writers stop and a fence row has reached every socket, each socket's materialised rows must equal a SELECT of the
/// table under its filter, row for row and column for column, with no change applied twice (<see cref="LiveRowsModel"/>).
/// </summary>
public sealed class SnapshotLoad(PostgresFixture db, ITestOutputHelper output)
{
    public static readonly TimeSpan WriteFor = TimeSpan.FromSeconds(20);
    private const int Sockets = 50;
    private const int Rows = 2_000;

    /// <summary>The filters the sockets use: none, eq, in, gte (with the SQL that selects the same rows).</summary>
    private static readonly (object? Filter, string Where, Func<JsonElement, bool> Test)[] Filters =
    [
        (null, "true", _ => true),
        (new { grp = 3 }, "grp = 3", r => r.GetProperty("grp").GetInt32() == 3),
        (new { grp = new { @in = new[] { 1, 2 } } }, "grp IN (1, 2)", r => r.GetProperty("grp").GetInt32() is 1 or 2),
        (new { score = new { gte = 500 } }, "score >= 500", r => r.GetProperty("score").GetInt32() >= 500),
    ];

    /// <summary>
    /// Runs the load on a host configured by <paramref name="configure"/>; <paramref name="disturb"/> runs alongside the
    /// writers (a kill halfway). Returns the resyncs the sockets saw.
    /// </summary>
    public async Task<int> RunAsync(Action<PgNotifyOptions> configure, Func<CancellationToken, Task>? disturb, int seed)
    {
        var versions = PostgresFixture.NewName("v");
        await db.ExecuteAsync($"CREATE SEQUENCE {versions}");
        var table = await db.CreateTableAsync($"id int PRIMARY KEY, grp int NOT NULL, score int NOT NULL, name text, tags text[], version bigint NOT NULL DEFAULT nextval('{versions}')");
        var fence = await db.CreateTableAsync("id int PRIMARY KEY, n int");
        var quoted = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, g % 5, (g * 37) % 1000, 'row ' || g, ARRAY['a', g::text] FROM generate_series(1, {Rows / 2}) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table, fence], configure: configure);

        using var stop = new CancellationTokenSource();
        var written = new long[1];
        var writers = Enumerable.Range(0, 4).Select(w => WriteAsync(quoted, versions, w, written, stop.Token)).ToList();
        var killer = disturb?.Invoke(stop.Token) ?? Task.CompletedTask;
        var random = new Random(seed);
        var clients = Enumerable.Range(0, Sockets)
            .Select(i => (Index: i, Delay: TimeSpan.FromMilliseconds(random.Next((int)(WriteFor.TotalMilliseconds * 0.9))), Filter: Filters[i % 2 == 0 ? 0 : 1 + (i / 2 % 3)]))
            .Select(c => new SnapshotClient(host, table, fence, c.Filter.Filter, c.Filter.Test, c.Delay))
            .ToList();
        var running = clients.Select(c => c.RunAsync()).ToList();

        await Task.Delay(WriteFor);
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        await killer;

        // The fence: written after every change, so it reaches each socket after all of them.
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(fence)} VALUES (1, 1)");
        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(60));

        var expected = new Dictionary<string, Dictionary<string, string>>();
        foreach (var (_, where, _) in Filters)
        {
            expected[where] = await SelectAsync(quoted, where);
        }

        output.WriteLine($"{written[0]} changes written; snapshots taken {clients.Sum(c => c.Model.Snapshots)}, resyncs {clients.Sum(c => c.Model.Resyncs)}");
        foreach (var client in clients)
        {
            client.Model.Violations.Should().BeEmpty();
            var where = Filters.First(f => f.Test == client.Test).Where;
            client.Model.Rows.Should().BeEquivalentTo(expected[where], $"the socket filtered by '{where}' must hold exactly the table's rows under it");
        }

        return clients.Sum(c => c.Model.Resyncs);
    }

    private async Task<Dictionary<string, string>> SelectAsync(string quoted, string where)
    {
        var rows = new Dictionary<string, string>();
        await using var command = db.DataSource.CreateCommand($"SELECT to_jsonb(t)::text FROM {quoted} t WHERE {where}");
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            using var document = JsonDocument.Parse(reader.GetString(0));
            rows[document.RootElement.GetProperty("id").GetRawText()] = LiveRowsModel.Canonical(document.RootElement);
        }

        return rows;
    }

    /// <summary>One writer: every 10 ms a transaction of 1 to 6 upserts, updates and deletes on random rows (~250 changes/s: some updates and deletes find no row).</summary>
    private async Task WriteAsync(string quoted, string versions, int seed, long[] written, CancellationToken stop)
    {
        var random = new Random(seed);
        await using var connection = await db.DataSource.OpenConnectionAsync();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                await using var transaction = await connection.BeginTransactionAsync();
                try
                {
                    for (var n = random.Next(1, 7); n > 0; n--)
                    {
                        var id = random.Next(1, Rows + 1);
                        var sql = random.Next(10) switch
                        {
                            < 4 => $"INSERT INTO {quoted} VALUES ($1, $2, $3, 'w' || $1, ARRAY['w', $2::text], nextval('{versions}')) ON CONFLICT (id) DO UPDATE SET grp = EXCLUDED.grp, score = EXCLUDED.score, name = EXCLUDED.name, version = nextval('{versions}')",
                            < 8 => $"UPDATE {quoted} SET grp = $2, score = $3, tags = tags || $2::text, version = nextval('{versions}') WHERE id = $1",
                            _ => $"DELETE FROM {quoted} WHERE id = $1 AND $2::int IS NOT NULL AND $3::int IS NOT NULL",
                        };
                        await using var command = new NpgsqlCommand(sql, connection, transaction);
                        command.Parameters.Add(new NpgsqlParameter { Value = id });
                        command.Parameters.Add(new NpgsqlParameter { Value = random.Next(5) });
                        command.Parameters.Add(new NpgsqlParameter { Value = random.Next(1000) });
                        Interlocked.Add(ref written[0], await command.ExecuteNonQueryAsync());
                    }

                    await transaction.CommitAsync();
                }
                catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
                {
                    await transaction.RollbackAsync();
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// One test client: connects at its moment, subscribes to the fence, then to the table with a snapshot, applies
    /// every frame to its <see cref="LiveRowsModel"/>, and takes a new snapshot after any resync. Done when the fence
    /// has arrived and no snapshot is pending.
    /// </summary>
    private sealed class SnapshotClient(WebHost host, string table, string fence, object? filter, Func<JsonElement, bool> test, TimeSpan delay)
    {
        private int _requests;

        public LiveRowsModel Model { get; } = new(table, test);

        public Func<JsonElement, bool> Test => test;

        public async Task RunAsync()
        {
            await Task.Delay(delay);
            await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
            await socket.SendJsonAsync(new { type = "subscribe", id = "fence", tables = new[] { fence } });
            var snapshotIds = new HashSet<string>();
            await RequestSnapshotAsync(socket, snapshotIds);
            var fenced = false;
            while (!fenced || Model.SnapshotPending || snapshotIds.Count > 0)
            {
                var frame = await socket.ReceiveAsync(TimeSpan.FromSeconds(60));
                var type = frame.GetProperty("type").GetString();
                if (type == "subscribed" && frame.GetProperty("id").ValueKind == JsonValueKind.String && snapshotIds.Remove(frame.GetProperty("id").GetString()!))
                {
                    Model.BeginSnapshot();
                    continue;
                }

                if (type == "change" && frame.GetProperty("table").GetString() == fence)
                {
                    fenced = true;
                    continue;
                }

                if (Model.Apply(frame))
                {
                    await RequestSnapshotAsync(socket, snapshotIds);
                }
            }
        }

        private Task RequestSnapshotAsync(TestSocket socket, HashSet<string> pending)
        {
            var id = "snap-" + Interlocked.Increment(ref _requests);
            pending.Add(id);
            return socket.SendJsonAsync(filter is null
                ? new { type = "subscribe", id, tables = new[] { table }, snapshot = true }
                : (object)new { type = "subscribe", id, tables = new[] { table }, snapshot = true, filter });
        }
    }
}
