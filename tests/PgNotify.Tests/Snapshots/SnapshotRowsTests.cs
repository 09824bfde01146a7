using System.Collections.Concurrent;
using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Snapshots;

/// <summary>What snapshot rows contain: the same JSON as change frames for every type, authorized and without excluded columns.</summary>
public sealed class SnapshotRowsTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task TypeMatrix_SnapshotRowsAreByteForByteTheChangeFramesData()
    {
        var mood = PostgresFixture.NewName("mood");
        await db.ExecuteAsync($"CREATE TYPE {mood} AS ENUM ('sad', 'ok', 'happy ☺')");
        var table = await db.CreateTableAsync(
            $"id int PRIMARY KEY, i int, b bigint, n numeric, f float8, flag bool, t text, j jsonb, js json, ints int[], texts text[], ts timestamptz, d date, u uuid, raw bytea, m {mood}, iv interval");
        var quoted = PostgresFixture.Quote(table);
        await db.ExecuteAsync($$"""
            INSERT INTO {{quoted}} VALUES
              (1, 42, 9223372036854775807, 12345678901234567890.123456789, 1.5, true, 'plain', '{"a": [1, 2, {"b": null}], "é": "x"}', '{"z": 1,  "a": 2}',
               '{1,NULL,3}', '{"a b","\"q\"",NULL}', '2026-12-01 10:00:00.123456+00', '2026-12-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10', 'happy ☺', '1 day 02:03:04'),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (3, -2147483648, -1, 'NaN', 'Infinity', false, E'tab\there <>&''\u2028 😀 \\ "', '"just a string"', 'null', '{}', '{}', 'infinity', '-infinity', '00000000-0000-0000-0000-000000000000', '\x', 'sad', '-1 mon'),
              (4, 0, 0, 1e400, -0.0, true, repeat('x', 70000), '[1e400, 0.1, -0, 1.0e-5]', '[]', '{-1}', '{""}', '1900-01-01 00:00:00+00', '0001-01-01', 'ffffffff-ffff-ffff-ffff-ffffffffffff', decode(repeat('ab', 5000), 'hex'), 'ok', '0')
            """);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SendJsonAsync(new { type = "subscribe", id = "types", tables = new[] { table }, snapshot = true });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "types");
        end.GetProperty("count").GetInt32().Should().Be(4);

        // The same rows as changes: an UPDATE that changes nothing sends each row as it is.
        await db.ExecuteAsync($"UPDATE {quoted} SET id = id");
        var changed = new Dictionary<int, string>();
        while (changed.Count < 4)
        {
            var change = await socket.ReceiveTypeAsync("change");
            changed[change.GetProperty("data").GetProperty("id").GetInt32()] = change.GetProperty("data").GetRawText();
        }

        foreach (var row in rows)
        {
            row.GetRawText().Should().Be(changed[row.GetProperty("id").GetInt32()], "a snapshot row is exactly the change frame's data");
        }

        rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3, 4);
        rows[1].EnumerateObject().Where(p => p.Name != "id").Should().OnlyContain(p => p.Value.ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public async Task AuthorizeChange_FiltersSnapshotRowsEachAsAnInsert_AndExcludedColumnsAreAbsent()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, owner text NOT NULL, secret text, note text");
        var quoted = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {quoted} SELECT g, CASE WHEN g % 3 = 0 THEN 'ann' ELSE 'bob' END, 's' || g, 'n' || g FROM generate_series(1, 30) g");
        var seen = new ConcurrentBag<(PgChangeOperation Operation, bool IsOldRow, long Xid)>();
        await using var host = await WebHost.StartAsync(
            db.ConnectionString,
            PostgresFixture.NewName("ch"),
            [table],
            ws => ws.AuthorizeChange = context =>
            {
                seen.Add((context.Change.Operation, context.IsOldRow, context.Change.TransactionId));
                var id = context.Row!.Value.GetProperty("id").GetInt32();
                if (id == 6)
                {
                    throw new InvalidOperationException("a hook that throws withholds the row");
                }

                return context.Row!.Value.GetProperty("owner").GetString() == "ann";
            },
            o => o.ExcludedColumns[table] = ["secret"]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SendJsonAsync(new { type = "subscribe", id = "a", tables = new[] { table }, snapshot = true });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "a");

        rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(3, 9, 12, 15, 18, 21, 24, 27, 30);
        rows.Should().OnlyContain(r => r.EnumerateObject().All(p => p.Name != "secret"));
        rows.Should().OnlyContain(r => r.GetProperty("owner").GetString() == "ann");
        end.GetProperty("count").GetInt32().Should().Be(9);
        end.GetProperty("truncated").GetBoolean().Should().BeFalse("rows the hook refused are not rows left out");
        seen.Should().HaveCount(30).And.OnlyContain(s => s.Operation == PgChangeOperation.Insert && !s.IsOldRow && s.Xid == 0);

        // A key column that is excluded cannot key the rows.
        var keyHidden = await db.CreateTableAsync("id int PRIMARY KEY, v text");
        await using var host2 = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [keyHidden], configure: o => o.ExcludedColumns[keyHidden] = ["id"]);
        await using var socket2 = await TestSocket.ConnectAsync(host2.SocketUri());
        await socket2.SendJsonAsync(new { type = "subscribe", id = "k", tables = new[] { keyHidden }, snapshot = true });
        (await socket2.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var error = await socket2.ReceiveAsync();
        error.GetProperty("code").GetString().Should().Be("snapshot_unavailable");
        error.GetProperty("message").GetString().Should().Contain("excludes its key column 'id'");
    }

    [Fact]
    public async Task RowNested10000Deep_ArrivesWholeInTheSnapshotAndEqualToItsChange()
    {
        var nested = new string('[', 10_000) + "1" + new string(']', 10_000);
        var table = await db.CreateTableAsync("id int PRIMARY KEY, j jsonb");
        var quoted = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {quoted} VALUES (1, $1::jsonb), (2, '2')", nested);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());
        await socket.SendJsonAsync(new { type = "subscribe", id = "deep", tables = new[] { table }, snapshot = true, filter = new { id = new { @in = new[] { 1, 2 } } } });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, _) = await SnapshotProtocolTests.ReadSnapshotAsync(socket, "deep");
        rows.Should().HaveCount(2);
        rows[0].GetProperty("j").GetRawText().Should().Be(nested);

        await db.ExecuteAsync($"UPDATE {quoted} SET id = id WHERE id = 1");
        (await socket.ReceiveTypeAsync("change")).GetProperty("data").GetRawText().Should().Be(rows[0].GetRawText());
    }
}
