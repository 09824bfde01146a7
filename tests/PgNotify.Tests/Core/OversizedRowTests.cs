using System.Text;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

/// <summary>
/// NOTIFY refuses payloads of 8000 bytes or more. Rows around and far beyond that limit must neither fail the
/// writer's transaction nor arrive truncated.
/// </summary>
public sealed class OversizedRowTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    public static TheoryData<string> Alphabets => new()
    {
        "a",           // 1 byte per character
        "é",           // 2 bytes
        "€",           // 3 bytes
        "😀",          // 4 bytes (a surrogate pair in .NET)
    };

    [Theory]
    [MemberData(nameof(Alphabets))]
    public async Task RowsAroundTheNotifyLimit_ArriveWholeAndTheWriterSucceeds(string unit)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);

        // The payload is the row plus about 190 bytes of envelope; sweep the body so that payloads run from well
        // under 8000 bytes, across the limit byte by byte, to over it: bodies of 7,700 to 8,010 bytes.
        var unitBytes = Encoding.UTF8.GetByteCount(unit);
        var bodies = new List<string>();
        for (var bytes = 7_700; bytes <= 8_010; bytes++)
        {
            var units = bytes / unitBytes;
            var body = new StringBuilder().Insert(0, unit, units).Append('x', bytes - (units * unitBytes)).ToString();
            bodies.Add(body);
        }

        var distinct = bodies.Distinct().ToList();
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            for (var i = 0; i < distinct.Count; i++)
            {
                await using var insert = new Npgsql.NpgsqlCommand($"INSERT INTO {PostgresFixture.Quote(table)} VALUES ($1, $2)", connection);
                insert.Parameters.Add(new Npgsql.NpgsqlParameter<int> { TypedValue = i });
                insert.Parameters.Add(new Npgsql.NpgsqlParameter<string> { TypedValue = distinct[i] });
                await insert.ExecuteNonQueryAsync();
            }
        }

        var changes = await host.Changes.NextChangesAsync(distinct.Count);
        changes.Select(c => c.Data!.Value.GetProperty("id").GetInt32()).Should().Equal(Enumerable.Range(0, distinct.Count));
        for (var i = 0; i < distinct.Count; i++)
        {
            changes[i].Data!.Value.GetProperty("body").GetString().Should().Be(distinct[i]);
        }

        var parked = await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.large_payload");
        parked.Should().BePositive("some of these rows must have crossed the limit, or the test proves nothing");
    }

    [Fact]
    public async Task OneMegabyteRow_UpdatedAndDeleted_ArrivesWholeEachTime()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table]);
        var big = string.Concat(Enumerable.Repeat("0123456789abcdef€", 1_048_576 / 19));
        var bigger = big + "tail";
        var t = PostgresFixture.Quote(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, $1)", big);
        await db.ExecuteAsync($"UPDATE {t} SET body = $1", bigger);
        await db.ExecuteAsync($"DELETE FROM {t}");
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (2, 'small')");

        var changes = await host.Changes.NextChangesAsync(4);
        changes[0].Data!.Value.GetProperty("body").GetString().Should().Be(big);
        changes[1].Data!.Value.GetProperty("body").GetString().Should().Be(bigger);
        changes[1].Old!.Value.GetProperty("body").GetString().Should().Be(big);
        changes[2].Operation.Should().Be(PgChangeOperation.Delete);
        changes[2].Old!.Value.GetProperty("body").GetString().Should().Be(bigger);
        changes[3].Data!.Value.GetProperty("body").GetString().Should().Be("small");
        Encoding.UTF8.GetByteCount(big).Should().BeGreaterThan(1_000_000);
    }
}
