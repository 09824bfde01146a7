using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>When the server itself cannot keep up, sockets are told to resync, once, and keep working.</summary>
[Collection(HeavyCollection.Name)]
public sealed class OverloadTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ListenerInboxOverflow_SendsOneResyncToSubscribedSockets_ThenChangesFlowAgain()
    {
        var table = await db.CreateTableAsync();
        // A tiny inbox: one big transaction's notifications arrive faster than they are dispatched, and most are dropped.
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            ws => ws.SendQueueCapacity = 100_000,
            o => o.InboxCapacity = 1);
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await socket.ReceiveTypeAsync("subscribed");

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'burst' FROM generate_series(1, 20000) g");

        var changes = new List<System.Text.Json.JsonElement>();
        System.Text.Json.JsonElement resync;
        try
        {
            resync = await socket.ReceiveTypeAsync("resync", changes, TimeSpan.FromSeconds(15));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"No resync; {changes.Count} frames arrived before the wait ended.");
        }

        resync.GetProperty("reason").GetString().Should().Be("listener_overflow");
        var missed = resync.GetProperty("missed").GetInt64();
        missed.Should().BePositive();

        // After the burst, live changes flow again. (With a one-slot inbox a single new notification may itself be
        // dropped while the backlog drains, so a few are written until one arrives.)
        var others = new List<System.Text.Json.JsonElement>();
        var arrived = false;
        var afterWritten = 0;
        for (var attempt = 0; attempt < 50 && !arrived; attempt++)
        {
            // Spread over up to 10 s: a notification queued behind the burst's tail can itself be dropped by the
            // one-slot inbox, so a later one is written; the pong below only paces the loop.
            await Task.Delay(attempt == 0 ? 0 : 200);
            await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES ($1, 'after')", 30_000 + attempt);
            afterWritten++;
            await socket.SendJsonAsync(new { type = "ping", id = attempt });
            while (true)
            {
                var frame = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
                var type = frame.GetProperty("type").GetString();
                if (type == "pong" && frame.GetProperty("id").GetInt32() == attempt)
                {
                    break;
                }

                others.Add(frame);
                arrived |= type == "change" && frame.GetProperty("data").GetProperty("id").GetInt32() >= 30_000;
            }
        }

        arrived.Should().BeTrue("changes flow again after the overload");

        // Every row written (the burst and the rows written after it) is delivered or counted in a resync's "missed".
        // The drops of the last second are reported within a second of the last drop: poll (ping/pong) until they are.
        var written = 20_000 + afterWritten;
        long Accounted() =>
            changes.Concat(others).Count(f => f.GetProperty("type").GetString() == "change")
            + missed + others.Where(f => f.GetProperty("type").GetString() == "resync").Sum(f => f.GetProperty("missed").GetInt64());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        for (var poll = 100; Accounted() < written && DateTime.UtcNow < deadline; poll++)
        {
            await Task.Delay(200);
            await socket.SendJsonAsync(new { type = "ping", id = poll });
            while (true)
            {
                var frame = await socket.ReceiveAsync(TimeSpan.FromSeconds(30));
                if (frame.GetProperty("type").GetString() == "pong" && frame.GetProperty("id").GetInt32() == poll)
                {
                    break;
                }

                others.Add(frame);
            }
        }

        // Resyncs are coalesced (at most one a second, one queued per socket), and the counts add up exactly: every row
        // was delivered once or counted as missed, none both.
        var all = changes.Concat(others).ToList();
        var resyncs = others.Where(f => f.GetProperty("type").GetString() == "resync").ToList();
        resyncs.Count.Should().BeLessThanOrEqualTo(5, "an overload is reported about once a second, not per dropped change");
        var burst = all.Where(f => f.GetProperty("type").GetString() == "change" && f.GetProperty("data").GetProperty("id").GetInt32() <= 20_000)
            .Select(f => f.GetProperty("data").GetProperty("id").GetInt32()).ToList();
        burst.Should().OnlyHaveUniqueItems();
        all.Where(f => f.GetProperty("type").GetString() == "change").Select(f => f.GetProperty("data").GetProperty("id").GetInt32())
            .Should().OnlyHaveUniqueItems();
        Accounted().Should().Be(written, "each row written is either delivered or counted as missed, exactly once");
    }
}
