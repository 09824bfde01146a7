using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

/// <summary>Changes made by SQL reach the listener's consumers with the right payloads, and only committed ones.</summary>
public sealed class ListenerDeliveryTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private async Task<(CoreHost Host, string Table)> StartAsync(string columns = "id int PRIMARY KEY, name text", Action<PgNotifyOptions>? configure = null)
    {
        var table = await db.CreateTableAsync(columns);
        var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], configure);
        return (host, table);
    }

    [Fact]
    public async Task InsertUpdateDeleteTruncate_FromAnotherConnection_ArriveWithRowsAndOldRows()
    {
        var (host, table) = await StartAsync();
        await using var _ = host;
        var t = PostgresFixture.Quote(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'alice')");
        await db.ExecuteAsync($"UPDATE {t} SET name = 'bob' WHERE id = 1");
        await db.ExecuteAsync($"DELETE FROM {t} WHERE id = 1");
        await db.ExecuteAsync($"TRUNCATE {t}");

        var insert = await host.Changes.NextChangeAsync();
        insert.Operation.Should().Be(PgChangeOperation.Insert);
        insert.Table.Should().Be(new PgTableName("public", table));
        insert.Data!.Value.GetProperty("id").GetInt32().Should().Be(1);
        insert.Data!.Value.GetProperty("name").GetString().Should().Be("alice");
        insert.Old.Should().BeNull();
        insert.TransactionId.Should().BePositive();
        insert.Sequence.Should().Be(1);
        insert.Timestamp.Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));

        var update = await host.Changes.NextChangeAsync();
        update.Operation.Should().Be(PgChangeOperation.Update);
        update.Data!.Value.GetProperty("name").GetString().Should().Be("bob");
        update.Old!.Value.GetProperty("name").GetString().Should().Be("alice");
        update.TransactionId.Should().BeGreaterThan(insert.TransactionId);

        var delete = await host.Changes.NextChangeAsync();
        delete.Operation.Should().Be(PgChangeOperation.Delete);
        delete.Data.Should().BeNull();
        delete.Old!.Value.GetProperty("name").GetString().Should().Be("bob");

        var truncate = await host.Changes.NextChangeAsync();
        truncate.Operation.Should().Be(PgChangeOperation.Truncate);
        truncate.Table.Name.Should().Be(table);
        truncate.Data.Should().BeNull();
        truncate.Old.Should().BeNull();
    }

    [Fact]
    public async Task ChangesMadeWithPsql_Arrive()
    {
        var (host, table) = await StartAsync();
        await using var _ = host;

        await Psql.RunAsync(db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} VALUES (7, 'from psql'); UPDATE {PostgresFixture.Quote(table)} SET name = 'edited' WHERE id = 7;");

        var changes = await host.Changes.NextChangesAsync(2);
        changes.Select(c => c.Operation).Should().Equal(PgChangeOperation.Insert, PgChangeOperation.Update);
        changes[0].Data!.Value.GetProperty("name").GetString().Should().Be("from psql");
        changes[1].Data!.Value.GetProperty("name").GetString().Should().Be("edited");
        changes[1].TransactionId.Should().Be(changes[0].TransactionId, "psql -c runs both statements in one transaction");
        changes[1].Sequence.Should().Be(2);
    }

    [Fact]
    public async Task RolledBackTransactionAndSavepoint_SendNothing()
    {
        var (host, table) = await StartAsync();
        await using var _ = host;
        var t = PostgresFixture.Quote(table);

        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await using (var tx = await connection.BeginTransactionAsync())
            {
                await using var insert = new Npgsql.NpgsqlCommand($"INSERT INTO {t} VALUES (1, 'rolled back')", connection, tx);
                await insert.ExecuteNonQueryAsync();
                await tx.RollbackAsync();
            }

            await using (var tx = await connection.BeginTransactionAsync())
            {
                await using (var kept = new Npgsql.NpgsqlCommand($"INSERT INTO {t} VALUES (2, 'kept')", connection, tx))
                {
                    await kept.ExecuteNonQueryAsync();
                }

                await tx.SaveAsync("sp");
                await using (var undone = new Npgsql.NpgsqlCommand($"INSERT INTO {t} VALUES (3, 'savepoint rolled back')", connection, tx))
                {
                    await undone.ExecuteNonQueryAsync();
                }

                await tx.RollbackAsync("sp");
                await using (var after = new Npgsql.NpgsqlCommand($"INSERT INTO {t} VALUES (4, 'after savepoint')", connection, tx))
                {
                    await after.ExecuteNonQueryAsync();
                }

                await tx.CommitAsync();
            }
        }

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (99, 'sentinel')");

        var ids = (await host.Changes.NextChangesAsync(3)).Select(c => c.Data!.Value.GetProperty("id").GetInt32());
        ids.Should().Equal(2, 4, 99);
    }

    [Fact]
    public async Task SameRowChangedABA_InOneTransaction_ArrivesAsThreeChanges()
    {
        var (host, table) = await StartAsync();
        await using var _ = host;
        var t = PostgresFixture.Quote(table);
        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'A')");
        (await host.Changes.NextChangeAsync()).Operation.Should().Be(PgChangeOperation.Insert);

        await db.ExecuteAsync($"BEGIN; UPDATE {t} SET name = 'B'; UPDATE {t} SET name = 'A'; UPDATE {t} SET name = 'B'; UPDATE {t} SET name = 'A'; COMMIT;");

        var changes = await host.Changes.NextChangesAsync(4);
        changes.Select(c => c.Data!.Value.GetProperty("name").GetString()).Should().Equal("B", "A", "B", "A");
        changes.Select(c => c.Sequence).Should().Equal(1, 2, 3, 4);
        changes.Select(c => c.TransactionId).Distinct().Should().ContainSingle();
    }

    [Fact]
    public async Task ExcludedColumns_NeverLeaveTheDatabase()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, email text, password_hash text");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => o.ExcludedColumns[table] = ["password_hash"]);
        var t = PostgresFixture.Quote(table);

        await db.ExecuteAsync($"INSERT INTO {t} VALUES (1, 'a@example.com', 'secret-hash')");
        await db.ExecuteAsync($"UPDATE {t} SET password_hash = 'other' WHERE id = 1");

        var changes = await host.Changes.NextChangesAsync(2);
        foreach (var change in changes)
        {
            change.Data!.Value.TryGetProperty("password_hash", out _).Should().BeFalse();
            change.Data!.Value.GetProperty("email").GetString().Should().Be("a@example.com");
        }

        changes[1].Old!.Value.TryGetProperty("password_hash", out _).Should().BeFalse();
        var parked = await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.large_payload WHERE payload LIKE '%secret-hash%'");
        parked.Should().Be(0);
    }

    [Fact]
    public async Task ExcludedColumns_KeyedByAnotherSpellingOfTheTable_StillExcluded()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, password_hash text");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table],
            o => o.ExcludedColumns["public." + table] = ["password_hash"]);

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'secret-hash')");

        (await host.Changes.NextChangeAsync()).Data!.Value.TryGetProperty("password_hash", out _).Should().BeFalse();
    }

    [Fact]
    public async Task ColumnTypes_ArriveAsJsonValues()
    {
        var (host, table) = await StartAsync("id int PRIMARY KEY, amount numeric, flag boolean, tags text[], meta jsonb, at timestamptz, nothing text");
        await using var _ = host;

        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 12.50, true, ARRAY['a','b'], '{{\"k\": [1, 2]}}', '2026-01-02T03:04:05Z', NULL)");

        var data = (await host.Changes.NextChangeAsync()).Data!.Value;
        data.GetProperty("amount").GetDecimal().Should().Be(12.50m);
        data.GetProperty("flag").GetBoolean().Should().BeTrue();
        data.GetProperty("tags").EnumerateArray().Select(e => e.GetString()).Should().Equal("a", "b");
        data.GetProperty("meta").GetProperty("k").GetArrayLength().Should().Be(2);
        data.GetProperty("at").GetDateTimeOffset().Should().Be(new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero));
        data.GetProperty("nothing").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task NotificationNotWrittenByTheTrigger_IsIgnoredAndLaterChangesStillArrive()
    {
        var (host, table) = await StartAsync();
        await using var _ = host;
        var channel = host.Options.Channel;

        await db.ExecuteAsync("SELECT pg_notify($1, 'not json at all'), pg_notify($1, '{\"v\":1}'), pg_notify($1, '[]')", channel);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (5, 'after garbage')");

        var change = await host.Changes.NextChangeAsync();
        change.Data!.Value.GetProperty("id").GetInt32().Should().Be(5);
    }
}
