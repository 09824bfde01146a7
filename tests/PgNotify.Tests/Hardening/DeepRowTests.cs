using Microsoft.Extensions.DependencyInjection;
using PgNotify.Internal;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Rows of any depth PostgreSQL accepts arrive whole. PostgreSQL has no fixed jsonb depth limit: its parser recurses
/// until max_stack_depth (about 12,000 levels of arrays at the default 2 MB). Depth 10,000 is far past
/// System.Text.Json's defaults (64 for JsonDocument, 1,000 for Utf8JsonWriter).
/// </summary>
public sealed class DeepRowTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<int> Depths => new() { 65, 1_001, 10_000 };

    private static string Nested(int depth) => new string('[', depth) + "1" + new string(']', depth);

    [Theory]
    [MemberData(nameof(Depths))]
    public async Task LiveMode_RowNestedDeep_ArrivesWhole(int depth)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, j jsonb");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var t = PostgresFixture.Quote(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, $1::jsonb)", Nested(depth));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, '1')");

        var first = await host.Changes.NextEventAsync();
        first.Should().BeOfType<PgChange>().Which.Data!.Value.GetProperty("j").GetRawText().Should().Be(Nested(depth));
        (await host.Changes.NextChangeAsync()).Data!.Value.GetProperty("id").GetInt32().Should().Be(2);
    }

    [Theory]
    [MemberData(nameof(Depths))]
    public async Task LosslessMode_RowNestedDeep_ArrivesWholeAndReplaysAcrossIt(int depth)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, j jsonb");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o => o.LosslessDelivery = true);
        await host.Status.WaitUntilCaughtUpAsync();
        var t = PostgresFixture.Quote(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, '1')");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, $1::jsonb)", Nested(depth));
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (3, '1')");

        var live = await host.Changes.NextChangesAsync(3);
        live.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3);
        live[1].Data!.Value.GetProperty("j").GetRawText().Should().Be(Nested(depth));

        // Replay across the deep row's position, unfiltered and filtered by table in SQL.
        var log = host.Host.Services.GetRequiredService<PgChangeLog>();
        foreach (var tables in new[] { null, new[] { new PgTableName("public", table) } })
        {
            var replayed = new List<PgChange>();
            await foreach (var change in log.ReadAsync(live[0].Position!.Value - 1, live[2].Position!.Value, tables, CancellationToken.None))
            {
                replayed.Add(change);
            }

            replayed.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(1, 2, 3);
            replayed[1].Data!.Value.GetProperty("j").GetRawText().Should().Be(Nested(depth));
        }
    }
}
