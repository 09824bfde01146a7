using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.WebSockets;

/// <summary>
/// Issue 15's cheaper path, end to end on real Kestrel and PostgreSQL: a change that no socket filters on and no hook
/// reads goes out without its row ever being parsed; a filter parses it, once, whatever the number of sockets.
/// </summary>
public sealed class LazyRowTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task ChangeWithoutFilterOrHook_IsSentWithoutParsingItsRow_AndAFilterParsesItOnce()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, name text, note text");
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        // A second consumer of the same feed sees the very PgChange objects the fan-out routed.
        using var feed = host.App.Services.GetRequiredService<IPgChangeFeed>().Subscribe("lazy-row-probe");
        await using var plain = await TestSocket.ConnectAsync(host.SocketUri());
        await plain.SubscribeAsync(table);
        await using var other = await TestSocket.ConnectAsync(host.SocketUri());
        await other.SubscribeAsync(table);

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'ünïcödé <b>&', E'line\\nbreak \"quoted\"')");
        var first = await plain.ReceiveTypeAsync("change");
        (await other.ReceiveTypeAsync("change")).GetRawText().Should().Be(first.GetRawText());
        var unfiltered = await NextChangeAsync(feed);
        unfiltered.RowsParsed.Should().BeFalse("no socket filters on the row and no hook reads it");
        first.GetProperty("data").GetProperty("name").GetString().Should().Be("ünïcödé <b>&");
        first.GetProperty("data").GetProperty("note").GetString().Should().Be("line\nbreak \"quoted\"");

        // Now both sockets filter on the row: it is parsed for the first socket and the same element serves the second.
        await plain.SubscribeAsync(table, new { filter = new { id = 2 } });
        await other.SubscribeAsync(table, new { filter = new { id = 2 } });
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (2, 'two', NULL)");
        (await plain.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        (await other.ReceiveTypeAsync("change")).GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
        var filtered = await NextChangeAsync(feed);
        filtered.RowsParsed.Should().BeTrue("the filters read the row");
        var element = filtered.Data!.Value;
        JsonMarshalSame(element, filtered.Data!.Value).Should().BeTrue("the row is parsed once and kept");
    }

    private static async Task<PgChange> NextChangeAsync(PgChangeSubscription feed)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var item in feed.ReadAllAsync(timeout.Token))
        {
            if (item is PgChange change)
            {
                return change;
            }
        }

        throw new InvalidOperationException("The feed ended.");
    }

    /// <summary>Whether two elements are the same parsed value (the same backing document), not only equal JSON.</summary>
    private static bool JsonMarshalSame(JsonElement a, JsonElement b) =>
        System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(a) == System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(b);
}
