using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Core;

public sealed class InstallerTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private PgNotifyInstaller Installer => new(db.DataSource);

    [Fact]
    public async Task Install_RunTwice_IsIdempotentAndKeepsEnabledTables()
    {
        var table = await db.CreateTableAsync();
        await Installer.EnableTableAsync(new PgTableName("public", table), "ch1", ["name"]);

        await Installer.InstallAsync();
        await Installer.InstallAsync();
        await Installer.EnableTableAsync(new PgTableName("public", table), "ch1", ["name"]);

        var enabled = await Installer.GetEnabledTablesAsync();
        enabled.Should().ContainSingle(e => e.Table.Name == table)
            .Which.Should().BeEquivalentTo(new { Channel = "ch1", ExcludedColumns = new[] { "name" } });
        var triggers = await db.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1)", PostgresFixture.Quote(table));
        triggers.Should().Be(2);
    }

    [Fact]
    public async Task Install_FromManyInstancesAtOnce_Succeeds()
    {
        await using var fresh = new PostgresFixture();
        await fresh.InitializeAsync();
        try
        {
            var table = await fresh.CreateTableAsync();
            await new PgNotifyInstaller(fresh.DataSource).UninstallAsync();

            // Eight app instances start at the same moment, each with its own connection.
            var instances = Enumerable.Range(0, 8).Select(async _ =>
            {
                await using var source = NpgsqlDataSource.Create(fresh.ConnectionString);
                var installer = new PgNotifyInstaller(source);
                await installer.InstallAsync();
                await installer.EnableTableAsync(new PgTableName("public", table));
            });
            await Task.WhenAll(instances);

            var enabled = await new PgNotifyInstaller(fresh.DataSource).GetEnabledTablesAsync();
            enabled.Should().ContainSingle().Which.Table.Name.Should().Be(table);
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("Order Items")]
    [InlineData("we\"ird")]
    [InlineData("x'); DROP TABLE victims; --")]
    [InlineData("MixedCase.with.dots")]
    [InlineData("ünïcødé 表")]
    public async Task EnableTable_WithHostileOrUnusualNames_WorksAndInjectsNothing(string name)
    {
        var victims = await db.CreateTableAsync("id int");
        var schema = PostgresFixture.NewName("s");
        await db.ExecuteAsync($"CREATE SCHEMA {PostgresFixture.Quote(schema)}");
        await db.ExecuteAsync($"CREATE TABLE {PostgresFixture.Quote(schema)}.{PostgresFixture.Quote(name)} (id int PRIMARY KEY, \"Secret Col\" text, name text)");
        var tableName = new PgTableName(schema, name);
        var channel = "chan \"" + PostgresFixture.NewName("x");

        // Through the installer, and again through options (the host re-enables what it is configured with).
        await Installer.EnableTableAsync(tableName, channel, ["Secret Col"]);
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [tableName.ToString()],
            o => o.ExcludedColumns[tableName.ToString()] = ["Secret Col"]);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(schema)}.{PostgresFixture.Quote(name)} VALUES (1, 'hidden', 'shown')");

        var change = await host.Changes.NextChangeAsync();
        change.Table.Should().Be(tableName);
        change.Data!.Value.GetProperty("name").GetString().Should().Be("shown");
        change.Data!.Value.TryGetProperty("Secret Col", out _).Should().BeFalse();
        (await db.ScalarAsync<bool>("SELECT to_regclass($1) IS NOT NULL", PostgresFixture.Quote(victims))).Should().BeTrue();

        await Installer.DisableTableAsync(tableName);
        (await Installer.GetEnabledTablesAsync()).Should().NotContain(e => e.Table == tableName);
    }

    [Fact]
    public async Task EnableTable_UnknownTableOrColumn_FailsWithAClearError()
    {
        var missing = async () => await Installer.EnableTableAsync(new PgTableName("public", "no_such_table_" + Guid.NewGuid().ToString("N")));
        (await missing.Should().ThrowAsync<PostgresException>()).Which.MessageText.Should().Contain("does not exist");

        var table = await db.CreateTableAsync();
        var badColumn = async () => await Installer.EnableTableAsync(new PgTableName("public", table), excludedColumns: ["nope"]);
        (await badColumn.Should().ThrowAsync<PostgresException>()).Which.MessageText.Should().Contain("has no column(s) nope");
    }

    [Fact]
    public async Task Uninstall_RemovesTriggersAndSchema_AndLeavesDataAlone()
    {
        await using var fresh = new PostgresFixture();
        await fresh.InitializeAsync();
        try
        {
            var table = await fresh.CreateTableAsync();
            var installer = new PgNotifyInstaller(fresh.DataSource);
            await installer.EnableTableAsync(new PgTableName("public", table));
            await fresh.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'kept')");

            await installer.UninstallAsync();
            await installer.UninstallAsync();

            (await fresh.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'pgnotify'")).Should().Be(0);
            (await fresh.ScalarAsync<long>("SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1)", PostgresFixture.Quote(table))).Should().Be(0);
            (await fresh.ScalarAsync<long>($"SELECT count(*) FROM {PostgresFixture.Quote(table)}")).Should().Be(1);
            await fresh.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (2, 'writes still work')");
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task PlainSqlScripts_RunWithPsql_EnableAndDisableATable()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, secret text, name text");
        var root = PostgresServer.RepositoryRoot;
        var channel = PostgresFixture.NewName("ch");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, channel, [], o => o.InstallTriggers = false);

        await PsqlFileAsync(Path.Combine(root, "sql", "install.sql"));
        await PsqlFileAsync(Path.Combine(root, "sql", "enable_table.sql"), "-v", "table=" + table, "-v", "channel=" + channel, "-v", "exclude={secret}");
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 's', 'n')");
        var change = await host.Changes.NextChangeAsync();
        change.Data!.Value.TryGetProperty("secret", out _).Should().BeFalse();

        var listed = await PsqlFileAsync(Path.Combine(root, "sql", "list_tables.sql"));
        listed.Should().Contain(table);
        await PsqlFileAsync(Path.Combine(root, "sql", "disable_table.sql"), "-v", "table=" + table);
        (await Installer.GetEnabledTablesAsync()).Should().NotContain(e => e.Table.Name == table);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WriterWithoutRightsOnThePgnotifySchema_CanStillWrite_AndItsChangesArrive(bool lossless)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var role = PostgresFixture.NewName("writer");
        await db.ExecuteAsync($"CREATE ROLE {role}");
        await db.ExecuteAsync($"GRANT USAGE ON SCHEMA public TO {role}");
        await db.ExecuteAsync($"GRANT INSERT ON {PostgresFixture.Quote(table)} TO {role}");
        await using var host = await CoreHost.StartAsync(db.ConnectionString, PostgresFixture.NewName("ch"), [table], o => o.LosslessDelivery = lossless);

        // An oversized row too: in live mode it is parked in pgnotify.large_payload, which the writer cannot touch itself.
        var big = new string('x', 9_000);
        await using (var connection = await db.DataSource.OpenConnectionAsync())
        {
            await using (var setRole = new NpgsqlCommand($"SET ROLE {role}", connection))
            {
                await setRole.ExecuteNonQueryAsync();
            }

            await using (var insert = new NpgsqlCommand($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'small'), (2, $1)", connection))
            {
                insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = big });
                await insert.ExecuteNonQueryAsync();
            }

            await using var reset = new NpgsqlCommand("RESET ROLE", connection);
            await reset.ExecuteNonQueryAsync();
        }

        var changes = await host.Changes.NextChangesAsync(2);
        changes.Select(c => c.Data!.Value.GetProperty("body").GetString()).Should().Equal("small", big);
    }

    private async Task<string> PsqlFileAsync(string file, params string[] args)
    {
        var cs = new NpgsqlConnectionStringBuilder(db.ConnectionString);
        var start = new System.Diagnostics.ProcessStartInfo(Psql.Executable, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cs.Host!, "-p", cs.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", cs.Username!, "-d", cs.Database!, .. args, "-f", file])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (cs.Password is not null)
        {
            start.Environment["PGPASSWORD"] = cs.Password;
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, await stderr);
        return await stdout;
    }
}
