using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Replication;

/// <summary>
/// Both sources side by side on one table: for every column type, the replication source's <c>data</c> and <c>old</c>
/// serialise byte for byte as the trigger's (to_jsonb) do.
/// </summary>
public sealed class TypeMatrixTests(ReplicationFixture db) : IClassFixture<ReplicationFixture>
{
    private const string Columns = """
        id int PRIMARY KEY, i2 int2, i4 int4, i8 int8, num numeric, f4 float4, f8 float8, b bool, t text, vc varchar(20),
        jb jsonb, js json, ia int[], ta text[], na numeric[], ba bool[], tza timestamptz[], jba jsonb[], jsa json[], ua uuid[],
        tz timestamptz, ts timestamp, d date, u uuid, by bytea, mood {0}, pos {1}, label {2}, pair {3}, tm time, ttz timetz,
        iv interval, ip inet, big text
        """;

    [Fact]
    public async Task EveryColumnType_SameDataAndOldAsTheTriggerSource()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        string mood = "mood_" + suffix, pos = "pos_" + suffix, label = "label_" + suffix, pair = "pair_" + suffix;
        await db.ExecuteAsync($"CREATE TYPE {mood} AS ENUM ('sad', 'happy', 'o''dd \"q\"')");
        await db.ExecuteAsync($"CREATE DOMAIN {pos} AS numeric CHECK (VALUE > 0)");
        await db.ExecuteAsync($"CREATE DOMAIN {label} AS text");
        await db.ExecuteAsync($"CREATE TYPE {pair} AS (a int, b text)");
        var table = await db.CreateTableAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, Columns, mood, pos, label, pair));
        var t = PostgresFixture.Quote(table);

        await using var trigger = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        await using var replication = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => ReplicationFixture.UseReplication(o, ReplicationFixture.NewInstance()));
        await replication.Status.WaitUntilCaughtUpAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        var deep = new string('[', 10_000) + new string(']', 10_000);
        await db.ExecuteAsync($$$"""
            INSERT INTO {{{t}}} VALUES
            (1, 32767, -2147483648, 9223372036854775807, 123456789012345678901234567890.123456789, 1.5, 1e20, true,
             'quote " backslash \ tab	 emoji 😀 newline
            end', 'varchar',
             '{"b": [1, 2.50, {"z": null}], "a": "x", "aa": 1e2, "é": -0.0}', '{"b":1, "a":2, "a": 3, "n": 1E400, "m": 1.0e-3}',
             '{{1,2},{3,4}}', ARRAY['a"b', NULL, 'NULL', 'x,y', ' sp ', '{}', 'back\slash'], '{1.50,NaN,-0}', '{t,f,NULL}',
             ARRAY['2026-12-01 03:29:33.009+00'::timestamptz, 'infinity'], ARRAY['{"k": [1]}'::jsonb, 'null'], ARRAY['{"b":1,"a":2}'::json],
             ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid],
             '2026-12-01 03:29:33.009+00', '2026-12-01 03:29:33.123456', '2026-12-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10',
             'o''dd "q"', 12.5, 'a label', ROW(1, 'x "y"'), '03:29:33.5', '03:29:33+05:30', '1 day 02:00:00', '10.0.0.1/8', 'small'),
            (2, -32768, 0, -9223372036854775808, 'NaN', 'NaN', '-Infinity', false, '', '',
             '[]', '[ ]', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}',
             'infinity', '-infinity', 'infinity', NULL, '\x', 'sad', 1, '', ROW(NULL, NULL), '24:00', '00:00+00', '-1 year', '::1', NULL),
            (3, 0, 1, 1, 'Infinity', 3.4028235e38, -0, NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             '2026-01-01 10:00:00.12+05:30', '0044-03-15 12:00:00 BC', '2000-01-01 BC', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
            (4, NULL, NULL, NULL, '-0.000', 1e-7, 1.5e-7, NULL, NULL, NULL, '{deep}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)
            """.Replace("{deep}", deep, StringComparison.Ordinal));
        // TOAST: a large incompressible value, then an UPDATE that leaves it unchanged (pgoutput sends it as 'u').
        await db.ExecuteAsync($"UPDATE {t} SET big = (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g) WHERE id = 2");
        await db.ExecuteAsync($"UPDATE {t} SET i2 = 7 WHERE id = 2");
        await db.ExecuteAsync($"UPDATE {t} SET t = 'changed', js = '{{\"z\": 1}}' WHERE id = 1");
        await db.ExecuteAsync($"DELETE FROM {t} WHERE id IN (2, 3)");

        const int Count = 4 + 3 + 2;
        var expected = await trigger.Changes.NextChangesAsync(Count, TimeSpan.FromSeconds(30));
        var actual = await replication.Changes.NextChangesAsync(Count, TimeSpan.FromSeconds(30));
        for (var i = 0; i < Count; i++)
        {
            actual[i].Operation.Should().Be(expected[i].Operation);
            Serialize(actual[i].Data).Should().Be(Serialize(expected[i].Data), $"data of change {i + 1} ({expected[i].Operation})");
            Serialize(actual[i].Old).Should().Be(Serialize(expected[i].Old), $"old of change {i + 1} ({expected[i].Operation})");
        }

        actual[5].Data!.Value.GetProperty("big").GetString().Should().HaveLength(4000 * 32, "the unchanged TOASTed value is filled in");
    }

    /// <summary>Compact, as a frame writes a row (deep rows too: the deepest here nests 10,000 levels).</summary>
    private static string Serialize(JsonElement? row)
    {
        if (row is not { } r)
        {
            return "null";
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { MaxDepth = 20_000, SkipValidation = true }))
        {
            r.WriteTo(writer);
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
