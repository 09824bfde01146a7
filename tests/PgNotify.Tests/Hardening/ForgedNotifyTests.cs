using System.Text;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Anyone who can connect can NOTIFY on PgNotify's channel. In live mode a forged notification may at most inject a
/// row (documented in docs/security.md); it must never stop delivery, make every consumer resync, or re-deliver an old
/// row. Each forged payload is sent with pg_notify on a real server, then a real change must arrive next.
/// </summary>
public sealed class ForgedNotifyTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<string, string> Forged()
    {
        var data = new TheoryData<string, string>
        {
            { "empty schema", """{"v":1,"schema":"","table":"x","op":"INSERT"}""" },
            { "empty table", """{"v":1,"schema":"public","table":"","op":"INSERT","data":{}}""" },
            { "200-char table", "{\"v\":1,\"schema\":\"public\",\"table\":\"" + new string('t', 200) + "\",\"op\":\"INSERT\",\"data\":{}}" },
            { "NUL in the table name", """{"v":1,"schema":"public","table":"a\u0000b","op":"INSERT","data":{}}""" },
            { "lone surrogate in the row", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":1,"seq":1,"data":{"name":"\ud800"}}""" },
            { "lone surrogate in a key", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":1,"seq":1,"data":{"\udc00":1}}""" },
            { "v as a string", """{"v":"1","schema":"public","table":"@T","op":"INSERT","data":{}}""" },
            { "v huge", """{"v":1e400,"schema":"public","table":"@T","op":"INSERT","data":{}}""" },
            { "xid as a string", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":"a","data":{}}""" },
            { "xid 1e400", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":1e400,"data":{}}""" },
            { "xid beyond int64", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":123456789012345678901234567890,"data":{}}""" },
            { "xid fractional", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":1.5,"data":{}}""" },
            { "seq negative", """{"v":1,"schema":"public","table":"@T","op":"INSERT","seq":-1,"data":{}}""" },
            { "data an array", """{"v":1,"schema":"public","table":"@T","op":"INSERT","data":[1,2,3]}""" },
            { "data a string", """{"v":1,"schema":"public","table":"@T","op":"INSERT","data":"x"}""" },
            { "INSERT with old", """{"v":1,"schema":"public","table":"@T","op":"INSERT","data":{"id":1},"old":{"id":1}}""" },
            { "DELETE without old", """{"v":1,"schema":"public","table":"@T","op":"DELETE"}""" },
            { "unknown op", """{"v":1,"schema":"public","table":"@T","op":"MERGE","data":{}}""" },
            { "ts not a time", """{"v":1,"schema":"public","table":"@T","op":"INSERT","ts":42,"data":{}}""" },
            { "ref -1", """{"v":1,"ref":-1}""" },
            { "ref 0", """{"v":1,"schema":"public","table":"@T","op":"INSERT","ref":0}""" },
            { "ref a string", """{"v":1,"schema":"public","table":"@T","op":"INSERT","ref":"1"}""" },
            { "ref huge", """{"v":1,"schema":"public","table":"@T","op":"INSERT","ref":1e400}""" },
            { "ref without header", """{"v":1,"ref":1}""" },
            { "ref to nothing", """{"v":1,"schema":"public","table":"@T","op":"INSERT","xid":1,"seq":1,"ref":9223372036854775807}""" },
            { "wake as a string", """{"v":1,"wake":"x"}""" },
            { "deep array", new string('[', 3_900) + new string(']', 3_900) },
            { "deep unclosed", "{\"v\":1,\"data\":" + new string('[', 7_000) },
            { "not JSON", "hello" },
            { "empty", "" },
            { "null", "null" },
            { "trailing garbage", """{"v":1}{"v":1}""" },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(Forged))]
    public async Task Notify_ForgedPayload_IsDroppedWithoutGapAndDeliveryContinues(string name, string payload)
    {
        _ = name;
        var table = await db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);

        await db.ExecuteAsync("SELECT pg_notify($1, $2)", channel, payload.Replace("@T", table, StringComparison.Ordinal));
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'real')");

        // The very next event is the real change: no gap, no forged change in front of it.
        var next = await host.Changes.NextEventAsync();
        next.Should().BeOfType<PgChange>().Which.Data!.Value.GetProperty("name").GetString().Should().Be("real");
        (await host.HealthAsync()).Status.Should().Be(HealthStatus.Healthy);
        host.Logs.WithId(1006).Should().ContainSingle("the forged payload is logged");
        host.Logs.WithId(1021).Should().BeEmpty("a forged payload is an expected input, not an unexpected failure");
    }

    [Fact]
    public async Task Notify_FloodOfForgedPayloads_LogsAtMostOneLinePerIntervalAndDeliveryContinues()
    {
        var table = await db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);

        await db.ExecuteAsync("SELECT pg_notify($1, '{\"v\":1,\"schema\":\"\",\"table\":\"x\",\"op\":\"INSERT\",\"n\":' || i || '}') FROM generate_series(1, 5000) i", channel);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'real')");

        var next = await host.Changes.NextEventAsync();
        next.Should().BeOfType<PgChange>();
        host.Logs.WithId(1006).Count.Should().BeLessThanOrEqualTo(2, "5,000 forged payloads must not make 5,000 log lines");
    }

    [Fact]
    public async Task Notify_ReplayedReferenceToAnOversizedRow_IsNotDeliveredAgain()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, name text");
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        var t = PostgresFixture.Quote(table);
        var big = new string('x', 20_000);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, $1)", big);
        var first = await host.Changes.NextChangeAsync();
        first.Data!.Value.GetProperty("name").GetString().Should().Be(big);

        // The reference exactly as the trigger wrote it, sent again.
        var id = await db.ScalarAsync<long>("SELECT max(id) FROM pgnotify.large_payload");
        var replayed = $$"""{"v":1,"schema":"public","table":"{{table}}","op":"INSERT","xid":{{first.TransactionId}},"seq":{{first.Sequence}},"ref":{{id}}}""";
        await db.ExecuteAsync("SELECT pg_notify($1, $2)", channel, replayed);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'real')");

        var next = await host.Changes.NextEventAsync();
        next.Should().BeOfType<PgChange>().Which.Data!.Value.GetProperty("id").GetInt32().Should().Be(2);
        host.Logs.WithId(1006).Should().ContainSingle().Which.Message.Should().Contain("already delivered");
    }

    [Fact]
    public async Task Notify_ReferenceWhoseRowDisagreesWithTheNotification_IsRefused()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, name text");
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        // A parked row of another change (table, xid) that no notification has referenced yet.
        var parked = $$"""{"v":1,"schema":"public","table":"{{table}}","op":"INSERT","xid":777,"seq":1,"ts":null,"data":{"id":9,"name":"old"},"old":null}""";
        var id = await db.ScalarAsync<long>("INSERT INTO pgnotify.large_payload (payload) VALUES ($1) RETURNING id", parked);

        await db.ExecuteAsync("SELECT pg_notify($1, $2)", channel,
            $$"""{"v":1,"schema":"public","table":"{{table}}","op":"UPDATE","xid":778,"seq":4,"ref":{{id}}}""");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (2, 'real')");

        var next = await host.Changes.NextEventAsync();
        next.Should().BeOfType<PgChange>().Which.Data!.Value.GetProperty("id").GetInt32().Should().Be(2);
        host.Logs.WithId(1006).Should().ContainSingle().Which.Message.Should().Contain("not the change the notification describes");
    }

    [Fact]
    public async Task Notify_EveryForgedPayloadInARow_ThenRealChanges_AllArriveAndHealthStaysHealthy()
    {
        var table = await db.CreateTableAsync();
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            foreach (var row in Forged())
            {
                await using var notify = new NpgsqlCommand("SELECT pg_notify($1, $2)", connection);
                notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = channel });
                notify.Parameters.Add(new NpgsqlParameter<string> { TypedValue = ((string)row[1]).Replace("@T", table, StringComparison.Ordinal) });
                await notify.ExecuteNonQueryAsync();
            }
        }

        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} SELECT i, 'row ' || i FROM generate_series(1, 10) i");
        var changes = new List<PgChange>();
        while (changes.Count < 10)
        {
            changes.Add((PgChange)await host.Changes.NextEventAsync());
        }

        changes.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(1, 10));
        (await host.HealthAsync()).Status.Should().Be(HealthStatus.Healthy);
        host.Status.State.Should().Be(PgListenerState.Listening);
        _ = Encoding.UTF8;
    }
}
