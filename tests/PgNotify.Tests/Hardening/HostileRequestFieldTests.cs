using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Every request field with hostile content (wrong types, lone surrogates, huge numbers, deep nesting, oversized ids),
/// on a real host: an error frame, the socket stays open and served, and a bystander socket sees nothing of it.
/// Completes WebSockets/HostileInputTests.
/// </summary>
public sealed class HostileRequestFieldTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<string, string> Messages() => new()
    {
        { "{\"type\":\"\\ud800\"}", "invalid_message" },
        { "{\"\\ud800\":1,\"type\":\"ping\"}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":1e400}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":99999999999999999999}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":-9223372036854775809}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":[1]}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":true}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"\\ud800\"]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\",\"\\udc00\"]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[" + string.Join(",", Enumerable.Repeat("\"TABLE\"", 101)) + "]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[{\"name\":\"TABLE\"}]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":[\"\\ud800\"]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":[1e400]}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"operations\":{\"INSERT\":true}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"name\":\"\\ud800\"}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"\\ud800\":1}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"\\ud800\":1}}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"in\":[\"a\",\"\\ud800\"]}}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"lt\":\"\\udbff\"}}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"" + new string('c', 64) + "\":1}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":{\"in\":[" + string.Join(",", Enumerable.Range(0, 101)) + "]}}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{" + string.Join(",", Enumerable.Range(0, 17).Select(i => $"\"c{i}\":{i}")) + "}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":" + new string('[', 8) + new string(']', 8) + "}}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":{\"id\":" + new string('[', 20) + new string(']', 20) + "}}", "invalid_json" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"filter\":\"id=1\"}", "invalid_message" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"since\":\"\\ud800\"}", "invalid_position" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"since\":1e400}", "invalid_position" },
        { "{\"type\":\"subscribe\",\"tables\":[\"TABLE\"],\"since\":{}}", "invalid_position" },
        { "{\"type\":\"unsubscribe\",\"tables\":[\"\\ud800\"]}", "invalid_message" },
        { "{\"type\":\"ping\",\"id\":1}" + "{\"type\":\"ping\"}", "invalid_json" },
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public async Task HostileField_GetsAnErrorFrame_SocketStaysServed_AndNothingReachesABystander(string message, string code)
    {
        var table = await db.CreateTableAsync();
        var t = PostgresFixture.Quote(table);
        await using var host = await WebHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var bystander = await TestSocket.ConnectAsync(host.SocketUri("tables=" + table));
        await bystander.ReceiveTypeAsync("subscribed");
        await using var socket = await TestSocket.ConnectAsync(host.SocketUri());

        await socket.SendAsync(message.Replace("TABLE", table, StringComparison.Ordinal));
        var answer = await socket.ReceiveAsync();
        answer.GetProperty("type").GetString().Should().Be("error", answer.ToString());
        answer.GetProperty("code").GetString().Should().Be(code, answer.ToString());

        // Same socket still served; the bystander got only the real change.
        await socket.SubscribeAsync(table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'real')");
        (await socket.ReceiveAsync()).GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        var seen = await bystander.ReceiveAsync();
        seen.GetProperty("type").GetString().Should().Be("change", seen.ToString());
        seen.GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
    }
}
