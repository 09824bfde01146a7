using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// A row nested deeper than <see cref="System.Text.Json.Utf8JsonWriter"/>'s default depth of 1000 still reaches a
/// socket whole, and the changes after it keep flowing: the frame encoder has no depth limit of its own.
/// </summary>
public sealed class DeepRowSocketTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private static string Nested(int depth) => new string('[', depth) + "1" + new string(']', depth);

    [Theory]
    [InlineData(1_001, false)]
    [InlineData(10_000, false)]
    [InlineData(10_000, true)]
    public async Task RowNestedDeeperThanTheWritersDefault_ReachesTheSocketWhole(int depth, bool lossless)
    {
        await using var scenario = await SubscribedSocket.StartAsync(db, columns: "id int PRIMARY KEY, j jsonb", configure: o => o.LosslessDelivery = lossless);
        var socket = scenario.Socket;
        var t = scenario.QuotedTable;

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, $1::jsonb)", Nested(depth));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, '1')");

        var deep = await socket.ReceiveTypeAsync("change");
        deep.GetProperty("data").GetProperty("id").GetInt32().Should().Be(1);
        deep.GetProperty("data").GetProperty("j").GetRawText().Should().Be(Nested(depth));
        var next = await socket.ReceiveTypeAsync("change");
        next.GetProperty("data").GetProperty("id").GetInt32().Should().Be(2);
    }
}
