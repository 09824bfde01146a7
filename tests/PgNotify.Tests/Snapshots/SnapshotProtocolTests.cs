using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Snapshots;

/// <summary>The snapshot frames of <c>subscribe</c> with <c>"snapshot": true</c> (docs/protocol.md), on a real host.</summary>
public sealed class SnapshotProtocolTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task Subscribe_WithSnapshot_SendsRowsThenSnapshotEndThenLaterChanges()
    {
        var table = await db.CreateTableAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 5) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.SendJsonAsync(new { type = "subscribe", id = "s1", tables = new[] { table }, snapshot = true });
        var ack = await socket.ReceiveAsync();
        ack.GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await ReadSnapshotAsync(socket, "s1");

        rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3, 4, 5);
        rows[0].GetRawText().Should().Be("""{"id":1,"name":"row 1"}""");
        end.GetProperty("table").GetString().Should().Be(table);
        end.GetProperty("schema").GetString().Should().Be("public");
        end.GetProperty("count").GetInt32().Should().Be(5);
        end.GetProperty("truncated").GetBoolean().Should().BeFalse();
        end.GetProperty("key").EnumerateArray().Select(k => k.GetString()).Should().Equal("id");
        end.TryGetProperty("position", out _).Should().BeFalse("live delivery has no positions");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (6, 'six')");
        var change = await socket.ReceiveAsync();
        change.GetProperty("type").GetString().Should().Be("change");
        change.GetProperty("data").GetProperty("id").GetInt32().Should().Be(6);
    }

    [Fact]
    public async Task Subscribe_WithLimit_SendsTheFirstRowsByKeyAndSaysTruncated()
    {
        var table = await db.CreateTableAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(10, 1, -1) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], ws => ws.MaxSnapshotRows = 7);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.SendJsonAsync(new { type = "subscribe", id = 1, tables = new[] { table }, snapshot = true, limit = 3 });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var (rows, end) = await ReadSnapshotAsync(socket, 1);
        rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3);
        end.GetProperty("count").GetInt32().Should().Be(3);
        end.GetProperty("truncated").GetBoolean().Should().BeTrue();

        // A limit above MaxSnapshotRows is capped by it.
        await socket.SendJsonAsync(new { type = "subscribe", id = 2, tables = new[] { table }, snapshot = true, limit = long.MaxValue });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        (rows, end) = await ReadSnapshotAsync(socket, 2);
        rows.Should().HaveCount(7);
        end.GetProperty("truncated").GetBoolean().Should().BeTrue();

        // Exactly as many rows as the limit is not truncated.
        await socket.SendJsonAsync(new { type = "subscribe", id = 3, tables = new[] { table }, snapshot = true, filter = new { id = new { lte = 4 } }, limit = 4 });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        (rows, end) = await ReadSnapshotAsync(socket, 3);
        rows.Select(r => r.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3, 4);
        end.GetProperty("truncated").GetBoolean().Should().BeFalse();
    }

    [Fact]
    public async Task Subscribe_TableWithoutPrimaryKey_AnswersSnapshotUnavailableForItAndServesTheOtherTable()
    {
        var keyless = await db.CreateTableAsync("id int, name text");
        var keyed = await db.CreateTableAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(keyless)} VALUES (1, 'a'); INSERT INTO {PostgresFixture.Quote(keyed)} VALUES (1, 'b')");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [keyless, keyed]);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.SendJsonAsync(new { type = "subscribe", id = "both", tables = new[] { keyless, keyed }, snapshot = true });
        (await socket.ReceiveAsync()).GetProperty("type").GetString().Should().Be("subscribed");
        var error = await socket.ReceiveAsync();
        error.GetProperty("type").GetString().Should().Be("error");
        error.GetProperty("code").GetString().Should().Be("snapshot_unavailable");
        error.GetProperty("id").GetString().Should().Be("both");
        error.GetProperty("table").GetString().Should().Be(keyless);
        error.GetProperty("message").GetString().Should().Contain("primary key");

        var (rows, end) = await ReadSnapshotAsync(socket, "both");
        end.GetProperty("table").GetString().Should().Be(keyed);
        rows.Should().ContainSingle().Which.GetProperty("name").GetString().Should().Be("b");

        // Both subscriptions stand: changes of the keyless table still arrive.
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(keyless)} VALUES (2, 'c')");
        (await socket.ReceiveTypeAsync("change")).GetProperty("table").GetString().Should().Be(keyless);
    }

    [Fact]
    public async Task Subscribe_WithSnapshotLossless_SnapshotEndCarriesTheAcknowledgedPositionAndResumingFromItMissesNothing()
    {
        var table = await db.CreateTableAsync();
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series(1, 3) g");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure: o => o.LosslessDelivery = true);
        long position;
        await using (var socket = await TestSocket.ConnectAsync(host.SocketUri()))
        {
            await socket.SendJsonAsync(new { type = "subscribe", id = "l", tables = new[] { table }, snapshot = true });
            var ack = await socket.ReceiveAsync();
            ack.GetProperty("type").GetString().Should().Be("subscribed");
            var (rows, end) = await ReadSnapshotAsync(socket, "l");
            rows.Should().HaveCount(3);
            position = end.GetProperty("position").GetInt64();
            position.Should().Be(ack.GetProperty("position").GetInt64());
        }

        // Written while the client is away: resuming from the snapshot's position brings it.
        await db.ExecuteAsync($"UPDATE {PostgresFixture.Quote(table)} SET name = 'changed' WHERE id = 2");
        await using var again = await TestSocket.ConnectAsync(host.SocketUri($"tables={table}&since={position}"));
        await again.ReceiveTypeAsync("subscribed");
        var change = await again.ReceiveTypeAsync("change");
        change.GetProperty("data").GetProperty("name").GetString().Should().Be("changed");
        change.GetProperty("position").GetInt64().Should().BeGreaterThan(position);
    }

    /// <summary>Reads <c>snapshot</c> frames until the <c>snapshot_end</c> of request <paramref name="id"/>.</summary>
    internal static async Task<(List<JsonElement> Rows, JsonElement End)> ReadSnapshotAsync(TestSocket socket, object id, string? table = null, Action<JsonElement>? other = null)
    {
        var rows = new List<JsonElement>();
        while (true)
        {
            var frame = await socket.ReceiveAsync();
            var type = frame.GetProperty("type").GetString();
            if (type == "snapshot")
            {
                frame.GetProperty("id").ToString().Should().Be(id.ToString());
                rows.AddRange(frame.GetProperty("rows").EnumerateArray());
            }
            else if (type == "snapshot_end" && (table is null || frame.GetProperty("table").GetString() == table))
            {
                frame.GetProperty("id").ToString().Should().Be(id.ToString());
                return (rows, frame);
            }
            else if (other is not null)
            {
                other(frame);
            }
            else
            {
                throw new InvalidOperationException("Unexpected frame during a snapshot: " + frame);
            }
        }
    }
}
