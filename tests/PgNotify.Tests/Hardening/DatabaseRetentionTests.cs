using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Defect 7: pgnotify.change_log and pgnotify.large_payload stay bounded by their retention in the database itself.
/// Every write here comes from psql, and no app instance runs. Each test has a database of its own, since the
/// retention settings and the tables are per database.
/// </summary>
public sealed class DatabaseRetentionTests
{
    /// <summary>The trigger prunes at every 1000th log position (sql/install.sql): the log holds at most this many rows beyond its limit.</summary>
    private const int ChangeLogPruneEvery = 1000;

    /// <summary>The trigger prunes at every 100th large payload (sql/install.sql).</summary>
    private const int LargePayloadPruneEvery = 100;

    [Fact]
    public async Task ChangeLog_WrittenByPsqlAloneWithNoAppRunning_NeverGrowsPastMaxRows()
    {
        await using var db = await FreshAsync();
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.SetRetentionAsync(TimeSpan.FromDays(1), changeLogMaxRows: 100, TimeSpan.FromHours(1));
        await installer.EnableTableAsync(new PgTableName("public", table), lossless: true);

        for (var batch = 0; batch < 5; batch++)
        {
            await Psql.RunAsync(db.ConnectionString,
                $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'row ' || g FROM generate_series({(batch * 1000) + 1}, {(batch + 1) * 1000}) g");
            (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log")).Should().BeLessThanOrEqualTo(100 + ChangeLogPruneEvery);
        }

        // pruned_through says exactly what is gone: every position at or below it, none above.
        var prunedThrough = await db.ScalarAsync<long>("SELECT pruned_through FROM pgnotify.change_log_state");
        prunedThrough.Should().Be(4900);
        (await db.ScalarAsync<long>("SELECT min(position) FROM pgnotify.change_log")).Should().Be(prunedThrough + 1);
        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log")).Should().Be(100);
    }

    [Fact]
    public async Task ChangeLog_RowsOlderThanRetention_ArePrunedByLaterWritesAlone()
    {
        await using var db = await FreshAsync();
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.EnableTableAsync(new PgTableName("public", table), lossless: true);
        await Psql.RunAsync(db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'old' FROM generate_series(1, 10) g");

        // Retention zero: every row of an earlier transaction is past it. A later transaction's writes prune them.
        await Psql.RunAsync(db.ConnectionString, "UPDATE pgnotify.settings SET change_log_retention = '0'");
        await Psql.RunAsync(db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'new' FROM generate_series(11, 1010) g");

        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log WHERE payload::jsonb -> 'data' ->> 'body' = 'old'")).Should().Be(0);
        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log")).Should().Be(1000);
        (await db.ScalarAsync<long>("SELECT pruned_through FROM pgnotify.change_log_state")).Should().Be(10);
    }

    [Fact]
    public async Task ChangeLog_ManyConcurrentWriters_PruneWithoutFailingAndStayBounded()
    {
        await using var db = await FreshAsync();
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.SetRetentionAsync(TimeSpan.FromDays(1), changeLogMaxRows: 100, TimeSpan.FromHours(1));
        await installer.EnableTableAsync(new PgTableName("public", table), lossless: true);

        // Eight writers, 100 transactions of 10 rows each: prune points fall inside all of them, concurrently.
        var writers = Enumerable.Range(0, 8).Select(async writer =>
        {
            await using var connection = await db.DataSource.OpenConnectionAsync();
            for (var transaction = 0; transaction < 100; transaction++)
            {
                var first = (writer * 1000) + (transaction * 10);
                await using var insert = new Npgsql.NpgsqlCommand(
                    $"INSERT INTO {PostgresFixture.Quote(table)} SELECT g, 'w' FROM generate_series({first}, {first + 9}) g", connection);
                await insert.ExecuteNonQueryAsync();
            }
        });
        await Task.WhenAll(writers);

        (await db.ScalarAsync<long>($"SELECT count(*) FROM {PostgresFixture.Quote(table)}")).Should().Be(8000);
        // A prune point whose writer finds another pruning skips its turn; the next one deletes up to 2,000 rows.
        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log")).Should().BeLessThanOrEqualTo(100 + (2 * ChangeLogPruneEvery));
        (await db.ScalarAsync<long>("SELECT pruned_through FROM pgnotify.change_log_state")).Should().BeGreaterThanOrEqualTo(8000 - 100 - (2 * ChangeLogPruneEvery));
    }

    [Fact]
    public async Task LargePayload_WrittenByPsqlAloneWithNoAppRunning_StaysWithinRetention()
    {
        await using var db = await FreshAsync();
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.SetRetentionAsync(TimeSpan.FromDays(1), 1_000_000, largePayloadRetention: TimeSpan.Zero);
        await installer.EnableTableAsync(new PgTableName("public", table));

        // 250 oversized rows, each in a transaction of its own: each is older than the retention once the next commits.
        await Psql.RunAsync(db.ConnectionString,
            $"DO $$ BEGIN FOR i IN 1..250 LOOP INSERT INTO {PostgresFixture.Quote(table)} VALUES (i, repeat('x', 9000)); COMMIT; END LOOP; END $$");

        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.large_payload")).Should().BeLessThanOrEqualTo(LargePayloadPruneEvery);
    }

    private static async Task<PostgresFixture> FreshAsync()
    {
        var db = new PostgresFixture();
        await db.InitializeAsync();
        return db;
    }
}
