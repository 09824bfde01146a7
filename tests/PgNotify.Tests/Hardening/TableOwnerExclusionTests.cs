using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// A role that owns a watched table, but not PgNotify's schema, tries to get an excluded column out. The owner can stop
/// its table's changes altogether (drop or disable the trigger: its own table), and can copy its own data into another
/// column; what holds is that an excluded column's value never leaves under that column, whatever its name now, and
/// that nothing the owner does changes which columns PgNotify excludes.
/// </summary>
public sealed class TableOwnerExclusionTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private PgNotifyInstaller Installer => new(db.DataSource);

    [Fact]
    public async Task TableOwner_CallingEnableTableWithFewerExclusions_IsRefused()
    {
        var (mallory, schema) = await WatchedTableAsync();

        var error = await RoleSession.FailsAsync(db, mallory, $"SELECT pgnotify.enable_table('{schema}', 't', 'ch', '{{}}', true)");

        error.SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: true);
    }

    [Fact]
    public async Task TableOwner_RecreatingTheTriggerWithoutExclusionArguments_IsRefused_AndNothingLeavesMeanwhile()
    {
        var (mallory, schema) = await WatchedTableAsync();

        // The old trigger took its exclusions as arguments; the owner may drop its own table's trigger, but cannot attach
        // PgNotify's function again, with or without arguments.
        await RoleSession.ExecuteAsync(db, mallory, $"DROP TRIGGER pgnotify_row_change ON {schema}.t");
        var error = await RoleSession.FailsAsync(db, mallory,
            $"CREATE TRIGGER pgnotify_row_change AFTER INSERT OR UPDATE OR DELETE ON {schema}.t FOR EACH ROW EXECUTE FUNCTION pgnotify.notify_change('ch', 'log')");

        error.SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: false);
    }

    [Fact]
    public async Task TableOwner_DisablingTheTrigger_StopsItsChangesAndLeaksNothing()
    {
        var (mallory, schema) = await WatchedTableAsync();

        await RoleSession.ExecuteAsync(db, mallory, $"ALTER TABLE {schema}.t DISABLE TRIGGER pgnotify_row_change");

        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: false);
    }

    [Fact]
    public async Task TableOwner_RenamingTheExcludedColumn_KeepsItExcluded()
    {
        var (mallory, schema) = await WatchedTableAsync();

        await RoleSession.ExecuteAsync(db, mallory, $"ALTER TABLE {schema}.t RENAME COLUMN password_hash TO renamed_hash");

        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: true);
        var enabled = await Installer.GetEnabledTablesAsync();
        enabled.Single(e => e.Table.Schema == schema).ExcludedColumns.Should().Contain("renamed_hash");
    }

    [Fact]
    public async Task TableOwner_DroppingTheExcludedColumnAndAddingItBack_KeepsItExcluded()
    {
        var (mallory, schema) = await WatchedTableAsync();

        await RoleSession.ExecuteAsync(db, mallory, $"ALTER TABLE {schema}.t DROP COLUMN password_hash; ALTER TABLE {schema}.t ADD COLUMN password_hash text");

        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: true);
    }

    [Fact]
    public async Task TableOwner_EditingPgnotifysSettingsOrRemovingExclusions_IsRefused()
    {
        var (mallory, schema) = await WatchedTableAsync();

        (await RoleSession.FailsAsync(db, mallory, "UPDATE pgnotify.enabled_table SET excluded_columns = '{}', excluded_attnums = '{}'"))
            .SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
        (await RoleSession.FailsAsync(db, mallory, $"SELECT pgnotify.remove_excluded_columns('{schema}', 't', '{{password_hash}}')"))
            .SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
        (await RoleSession.FailsAsync(db, mallory, $"SELECT pgnotify.disable_table('{schema}', 't')"))
            .SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);

        await InsertAndAssertNoSecretAsync(mallory, schema, expectLogged: true);
    }

    /// <summary>A table owned by a role of its own, watched (lossless) by the installing role with password_hash excluded.</summary>
    private async Task<(string Role, string Schema)> WatchedTableAsync()
    {
        var mallory = await RoleSession.CreateRoleAsync(db, "mallory");
        var schema = mallory;
        await db.ExecuteAsync($"CREATE SCHEMA {schema} AUTHORIZATION {mallory}");
        await db.ExecuteAsync($"CREATE TABLE {schema}.t (id int PRIMARY KEY, password_hash text, name text); ALTER TABLE {schema}.t OWNER TO {mallory}");
        await Installer.EnableTableAsync(new PgTableName(schema, "t"), PostgresFixture.NewName("ch"), ["password_hash"], lossless: true);
        return (mallory, schema);
    }

    /// <summary>The owner writes a row whose excluded column holds a secret, updates it and deletes it; no logged payload may hold the secret.</summary>
    private async Task InsertAndAssertNoSecretAsync(string owner, string schema, bool expectLogged)
    {
        var secret = "secret-" + Guid.NewGuid().ToString("N");
        var hashColumn = await db.ScalarAsync<string>(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attname LIKE '%hash'",
            schema + ".t");
        await RoleSession.ExecuteAsync(db, owner, $"""
            INSERT INTO {schema}.t (id, {hashColumn}, name) VALUES (1, '{secret}', 'n');
            UPDATE {schema}.t SET name = 'm' WHERE id = 1;
            DELETE FROM {schema}.t WHERE id = 1;
            """);

        var payloads = new List<string>();
        await using (var command = db.DataSource.CreateCommand("SELECT payload FROM pgnotify.change_log WHERE payload::jsonb ->> 'schema' = $1"))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                payloads.Add(reader.GetString(0));
            }
        }

        payloads.Should().HaveCount(expectLogged ? 3 : 0);
        payloads.Should().NotContain(p => p.Contains(secret, StringComparison.Ordinal) || p.Contains(hashColumn, StringComparison.Ordinal));
    }
}
