using Microsoft.Extensions.Logging;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Defect 8: excluded columns only widen. An instance configured with fewer exclusions (an older one, or one configured
/// without them) keeps the table's exclusions and logs the mismatch; only an explicit removal narrows them; a renamed
/// column stays excluded.
/// </summary>
public sealed class ExclusionWideningTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Fact]
    public async Task InstanceWithoutTheExclusion_EnablingAfterOneWithIt_KeepsItExcludedAndLogsAWarning()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, password_hash text, name text");
        var channel = PostgresFixture.NewName("ch");
        await using (await CoreHost.StartAsync(db.ConnectionString, channel, [table], o => o.ExcludedColumns[table] = ["password_hash"]))
        {
        }

        // Instance B starts without the exclusion: it re-enables the table, and password_hash must still never flow.
        await using var b = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'hash', 'shown')");
        var change = await b.Changes.NextChangeOfAsync(table);
        change.Data!.Value.GetProperty("name").GetString().Should().Be("shown");
        change.Data!.Value.TryGetProperty("password_hash", out _).Should().BeFalse();

        // What instance B's installer logs when it enables the table without the exclusion.
        var logger = new ListLogger();
        await new PgNotifyInstaller(db.DataSource, logger).EnableTableAsync(new PgTableName("public", table), channel);
        logger.Entries.Should().ContainSingle(e => e.Id.Id == 1301 && e.Level == LogLevel.Warning)
            .Which.Message.Should().Contain("password_hash").And.Contain(table);
    }

    [Fact]
    public async Task InstanceWithTheSameExclusions_LogsNothing()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, password_hash text, name text");
        var logger = new ListLogger();
        var installer = new PgNotifyInstaller(db.DataSource, logger);

        await installer.EnableTableAsync(new PgTableName("public", table), excludedColumns: ["password_hash"]);
        await installer.EnableTableAsync(new PgTableName("public", table), excludedColumns: ["password_hash"]);

        logger.Entries.Should().BeEmpty();
    }

    [Fact]
    public async Task RenamingAnExcludedColumn_KeepsItExcluded_AndTheOldNameStillConfigures()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, password_hash text, name text");
        var channel = PostgresFixture.NewName("ch");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.EnableTableAsync(new PgTableName("public", table), channel, ["password_hash"]);
        await db.ExecuteAsync($"ALTER TABLE {PostgresFixture.Quote(table)} RENAME COLUMN password_hash TO pw_hash");

        // An instance still configured with the old name starts (the column is excluded already) and sends no pw_hash.
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table], o => o.ExcludedColumns[table] = ["password_hash"]);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'hash', 'shown')");

        var change = await host.Changes.NextChangeOfAsync(table);
        change.Data!.Value.GetProperty("name").GetString().Should().Be("shown");
        change.Data!.Value.TryGetProperty("pw_hash", out _).Should().BeFalse();
        (await installer.GetEnabledTablesAsync()).Single(e => e.Table.Name == table).ExcludedColumns.Should().Contain("pw_hash");
    }

    [Fact]
    public async Task RemoveExcludedColumns_IsTheOneWayToSendAColumnAgain()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, password_hash text, name text");
        var channel = PostgresFixture.NewName("ch");
        var installer = new PgNotifyInstaller(db.DataSource);
        await installer.EnableTableAsync(new PgTableName("public", table), channel, ["password_hash"]);

        var left = await installer.RemoveExcludedColumnsAsync(new PgTableName("public", table), ["password_hash"]);

        left.Should().BeEmpty();
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [table]);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'hash', 'shown')");
        var change = await host.Changes.NextChangeOfAsync(table);
        change.Data!.Value.GetProperty("password_hash").GetString().Should().Be("hash");
    }

    private sealed class ListLogger : ILogger
    {
        public List<(LogLevel Level, EventId Id, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, eventId, formatter(state, exception)));
            }
        }
    }
}
