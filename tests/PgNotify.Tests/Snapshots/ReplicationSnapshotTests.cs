using System.Text.Json;
using PgNotify.Tests.Infrastructure;
using PgNotify.Tests.Replication;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// Snapshot, then changes, with the replication source (docs/replication.md): the rows are the trigger source's and the
/// stream's, byte for byte, without the excluded columns; the frames, positions and a resume are as with the trigger.
/// </summary>
public sealed class ReplicationSnapshotTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    private const string Columns = """
        id int PRIMARY KEY, i2 int2, i8 int8, num numeric, f4 float4, f8 float8, b bool, t text, vc varchar(20), jb jsonb, js json,
        ia int[], ta text[], na numeric[], tza timestamptz[], tz timestamptz, ts timestamp, d date, u uuid, by bytea, mood {0},
        pos {1}, pair {2}, tm time, ttz timetz, iv interval, ip inet, big text, secret text
        """;

    [Fact]
    public async Task SnapshotRows_AreByteForByteTheTriggerSourcesAndTheStreamsData_WithoutTheExcludedColumn()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string mood = "mood_" + suffix, pos = "pos_" + suffix, pair = "pair_" + suffix;
        await db.ExecuteAsync($"CREATE TYPE {mood} AS ENUM ('sad', 'o''dd \"q\"'); CREATE DOMAIN {pos} AS numeric CHECK (VALUE > 0); CREATE TYPE {pair} AS (a int, b text)");
        var table = await db.CreateTableAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, Columns, mood, pos, pair));
        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($$$"""
            INSERT INTO {{{t}}} VALUES
            (1, 32767, 9223372036854775807, 123456789012345678901234567890.123456789, 1.5, 1e20, true, E'quote " backslash \\ tab\t emoji 😀', 'varchar',
             '{"b": [1, 2.50, {"z": null}], "a": "x", "é": -0.0}', '{"b":1, "a":2, "a": 3, "n": 1E400}', '{{1,2},{3,4}}', ARRAY['a"b', NULL, 'NULL', 'x,y'],
             '{1.50,NaN,-0}', ARRAY['2026-12-01 03:29:33.009+00'::timestamptz, 'infinity'], '2026-12-01 03:29:33.009+00', '2026-12-01 03:29:33.123456',
             '2026-12-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10', 'o''dd "q"', 12.5, ROW(1, 'x "y"'), '03:29:33.5', '03:29:33+05:30',
             '1 day 02:00:00', '10.0.0.1/8', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g), 'hidden 1'),
            (2, -32768, -9223372036854775808, 'NaN', 'NaN', '-Infinity', false, '', '', '[]', '[ ]', '{}', '{}', '{}', '{}', 'infinity', '-infinity',
             'infinity', NULL, '\x', 'sad', 1, ROW(NULL, NULL), '24:00', '00:00+00', '-1 year', '::1', NULL, 'hidden 2'),
            (3, NULL, NULL, '-0.000', 3.4028235e38, -0, NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, '2026-01-01 10:00:00.12+05:30',
             '0044-03-15 12:00:00 BC', '2000-01-01 BC', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
            """);
        // The replication host first: no trigger exists yet, so its rows cannot come from the trigger's setup.
        var replication = await SnapshotAsync(table, o =>
        {
            ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance());
            o.ExcludedColumns[table] = ["secret"];
        });
        var trigger = await SnapshotAsync(table, o => o.ExcludedColumns[table] = ["secret"]);

        replication.Rows.Should().HaveCount(3);
        replication.Rows.Should().Equal(trigger.Rows, "snapshot rows under Replication are the trigger source's, byte for byte");
        replication.Rows.Should().OnlyContain(r => !r.Contains("\"secret\"", StringComparison.Ordinal) && !r.Contains("hidden", StringComparison.Ordinal));

        // The stream's rows: an UPDATE that changes nothing sends each row as it is.
        await db.ExecuteAsync($"UPDATE {t} SET id = id");
        var streamed = new Dictionary<int, string>();
        while (streamed.Count < 3)
        {
            var change = await replication.Socket.ReceiveTypeAsync("change");
            streamed[change.GetProperty("data").GetProperty("id").GetInt32()] = change.GetProperty("data").GetRawText();
        }

        replication.Rows.Should().Equal(streamed.OrderBy(s => s.Key).Select(s => s.Value), "a snapshot row is exactly the stream's data for it");
        await trigger.DisposeAsync();
        await replication.DisposeAsync();
    }

    [Fact]
    public async Task SnapshotThenStream_FreshInstance_PositionIsJustBelowTheSlotsStart_AndResumingFromItMissesNothing()
    {
        var table = await db.CreateTableAsync();
        var unpublished = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} SELECT g, 'row ' || g FROM generate_series(1, 5) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table, unpublished],
            configure: o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await db.ExecuteAsync($"ALTER PUBLICATION pgnotify DROP TABLE {PostgresFixture.Quote(unpublished)}"); // behind PgNotify's back
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        // Before this instance delivered anything: the acknowledged position is the slot's start, not 0.
        await socket.SendJsonAsync(new { type = "subscribe", id = "s", tables = new[] { table, unpublished }, snapshot = true });
        var ack = await socket.ReceiveAsync();
        ack.GetProperty("type").GetString().Should().Be("subscribed", ack.ToString());
        var start = ack.GetProperty("position").GetInt64();
        start.Should().BeGreaterThan(0, "the position just below the slot's start, where this instance's history begins");
        var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "s", table);
        rows.Select(r => r.GetRawText()).Should().Equal(Enumerable.Range(1, 5).Select(i => $$"""{"id":{{i}},"name":"row {{i}}"}"""));
        end.GetProperty("count").GetInt32().Should().Be(5);
        end.GetProperty("truncated").GetBoolean().Should().BeFalse();
        end.GetProperty("key").EnumerateArray().Select(k => k.GetString()).Should().Equal("id");
        end.GetProperty("position").GetInt64().Should().Be(start);
        var error = await socket.ReceiveAsync();
        error.GetProperty("code").GetString().Should().Be("snapshot_unavailable", error.ToString());
        error.GetProperty("table").GetString().Should().Be(unpublished);
        error.GetProperty("message").GetString().Should().Contain("publication 'pgnotify'").And.Contain("PgNotify:Tables");

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (6, 'six'); UPDATE {t} SET name = 'one' WHERE id = 1");
        var live = new[] { await socket.ReceiveTypeAsync("change"), await socket.ReceiveTypeAsync("change") };
        live.Select(c => c.GetProperty("data").GetProperty("id").GetInt32()).Should().Equal(6, 1);
        live.Select(c => c.GetProperty("position").GetInt64()).Should().BeInAscendingOrder().And.OnlyContain(p => p > start);

        // A client that kept only the snapshot's position resumes on the same instance with every later change, once.
        await using var resumed = await TestSocket.ConnectAsync(host.SocketUri());
        var again = await resumed.RequestAsync(new { type = "subscribe", id = "r", tables = new[] { table }, since = start });
        again.GetProperty("type").GetString().Should().Be("subscribed", "the start position is in this instance's history: " + again);
        var replayed = new[] { await resumed.ReceiveAsync(), await resumed.ReceiveAsync() };
        replayed.Select(c => c.GetProperty("position").GetInt64()).Should().Equal(live.Select(c => c.GetProperty("position").GetInt64()));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (7, 'seven')");
        var next = await resumed.ReceiveAsync();
        next.GetProperty("data").GetProperty("id").GetInt32().Should().Be(7, "no change twice, none missing: " + next);
    }

    private async Task<Snapshot> SnapshotAsync(string table, Action<PgNotifyOptions> configure)
    {
        var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: configure);
        var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SendJsonAsync(new { type = "subscribe", id = "types", tables = new[] { table }, snapshot = true });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "types");
        end.GetProperty("count").GetInt32().Should().Be(rows.Count);
        return new Snapshot(host, socket, rows.Select(r => r.GetRawText()).ToList());
    }

    private sealed record Snapshot(WebHost Host, TestSocket Socket, List<string> Rows) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Socket.DisposeAsync();
            await Host.DisposeAsync();
        }
    }
}
