using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Defect 5: nothing a writer or a table owner controls may run with the installer's rights, the install refuses
/// PgNotify objects another role owns, and writers still cannot forge change-log rows. Each attack runs on the real
/// server, as the attacking role. The fixture installs PgNotify as the superuser <c>postgres</c>, as in the report.
/// </summary>
public sealed class TriggerPrivilegeTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private PgNotifyInstaller Installer => new(db.DataSource);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TableOwnersCastToJson_RunsWithTheOwnersOwnRights_SoTheOwnerDoesNotBecomeSuperuser(bool lossless)
    {
        var (mallory, schema) = await CreateTableOwnerAsync();
        await Installer.EnableTableAsync(new PgTableName(schema, "t"), PostgresFixture.NewName("ch"), lossless: lossless);

        // The reported attack: an enum of mallory's whose cast to json makes mallory a superuser. The cast swallows its
        // own permission error, so the write goes through either way and only the role's attribute tells.
        await RoleSession.ExecuteAsync(db, mallory, $"""
            CREATE TYPE {schema}.evil AS ENUM ('x');
            CREATE FUNCTION {schema}.evil_json({schema}.evil) RETURNS json LANGUAGE plpgsql AS $$
            BEGIN
                BEGIN
                    EXECUTE 'ALTER ROLE {mallory} SUPERUSER';
                EXCEPTION WHEN insufficient_privilege THEN NULL;
                END;
                RETURN '"cast ran"'::json;
            END $$;
            CREATE CAST ({schema}.evil AS json) WITH FUNCTION {schema}.evil_json({schema}.evil);
            ALTER TABLE {schema}.t ADD COLUMN e {schema}.evil;
            INSERT INTO {schema}.t (id, password_hash, name, e) VALUES (1, 'secret', 'n', 'x');
            """);

        (await db.ScalarAsync<bool>("SELECT rolsuper FROM pg_roles WHERE rolname = $1", mallory)).Should().BeFalse();
        if (lossless)
        {
            // The change still flows, with the cast's output computed as mallory.
            var payloads = await PayloadsOfAsync(schema);
            payloads.Should().ContainSingle().Which.Should().Contain("cast ran");
        }
    }

    [Fact]
    public async Task Install_WhenAnotherRoleCreatedSchemaPgnotifyFirst_FailsNamingTheOwnerAndTheFix()
    {
        await using var fresh = new PostgresFixture();
        await fresh.InitializeAsync();
        try
        {
            await new PgNotifyInstaller(fresh.DataSource).UninstallAsync();
            var mallory = await RoleSession.CreateRoleAsync(fresh, "mallory");
            await fresh.ExecuteAsync($"GRANT CREATE ON DATABASE \"{fresh.DatabaseName}\" TO {mallory}");
            await RoleSession.ExecuteAsync(fresh, mallory, "CREATE SCHEMA pgnotify");

            var install = () => new PgNotifyInstaller(fresh.DataSource).InstallAsync();

            var error = (await install.Should().ThrowAsync<PostgresException>()).Which;
            error.SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
            error.MessageText.Should().Contain($"schema pgnotify is owned by role {mallory}, not by postgres");
            error.Hint.Should().Contain("DROP SCHEMA pgnotify CASCADE");
            (await fresh.ScalarAsync<long>("SELECT count(*) FROM pg_proc WHERE pronamespace = 'pgnotify'::regnamespace")).Should().Be(0);
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task Install_WhenAnotherRoleCreatedATableInSchemaPgnotifyFirst_FailsNamingTheTableAndItsOwner()
    {
        await using var fresh = new PostgresFixture();
        await fresh.InitializeAsync();
        try
        {
            await new PgNotifyInstaller(fresh.DataSource).UninstallAsync();
            var mallory = await RoleSession.CreateRoleAsync(fresh, "mallory");
            await fresh.ExecuteAsync($"CREATE SCHEMA pgnotify; GRANT USAGE, CREATE ON SCHEMA pgnotify TO {mallory}");
            await RoleSession.ExecuteAsync(fresh, mallory,
                "CREATE TABLE pgnotify.change_log (position bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), payload text NOT NULL)");

            var install = () => new PgNotifyInstaller(fresh.DataSource).InstallAsync();

            var error = (await install.Should().ThrowAsync<PostgresException>()).Which;
            error.SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
            error.MessageText.Should().Contain($"table pgnotify.change_log is owned by role {mallory}, not by postgres");
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [Fact]
    public async Task Writer_CannotForgeChangeLogRows_ByInsertDirectCallOwnTriggerOrOwnCast()
    {
        var victim = await db.CreateTableAsync("id int PRIMARY KEY, name text");
        await Installer.EnableTableAsync(new PgTableName("public", victim), PostgresFixture.NewName("ch"), lossless: true);
        var writer = await RoleSession.CreateRoleAsync(db, "writer");
        await db.ExecuteAsync($"GRANT USAGE ON SCHEMA public TO {writer}; GRANT INSERT ON {PostgresFixture.Quote(victim)} TO {writer}; CREATE SCHEMA {writer} AUTHORIZATION {writer}");
        var forged = $"pgnotify.emit_change('public.{victim}'::regclass, 'public', '{victim}', 'INSERT', '{{\"id\": 1, \"name\": \"forged\"}}', NULL)";

        // 1. Writing the log itself.
        await RoleSession.FailsAsync(db, writer, "INSERT INTO pgnotify.change_log (payload) VALUES ('{\"v\":1,\"schema\":\"public\",\"table\":\"x\",\"op\":\"INSERT\",\"data\":{\"name\":\"forged\"}}')");
        await RoleSession.FailsAsync(db, writer, "UPDATE pgnotify.change_log SET payload = 'forged'");

        // 2. Calling the definer helper directly.
        (await RoleSession.FailsAsync(db, writer, "SELECT " + forged)).SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);

        // 3. Calling it from a trigger of the writer's own, as a plain assignment just like PgNotify's trigger does.
        await RoleSession.ExecuteAsync(db, writer, $"""
            CREATE TABLE {writer}.own (id int);
            CREATE FUNCTION {writer}.fire() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE v boolean; BEGIN v := {forged}; RETURN NULL; END $$;
            CREATE TRIGGER fire AFTER INSERT ON {writer}.own FOR EACH ROW EXECUTE FUNCTION {writer}.fire();
            """);
        (await RoleSession.FailsAsync(db, writer, $"INSERT INTO {writer}.own VALUES (1)")).SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);

        // 4. Attaching PgNotify's trigger function to a table of its own.
        (await RoleSession.FailsAsync(db, writer, $"CREATE TRIGGER pgnotify_row_change AFTER INSERT ON {writer}.own FOR EACH ROW EXECUTE FUNCTION pgnotify.notify_change()"))
            .SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);

        // 5. From inside PgNotify's own trigger: a table owner's cast, which the trigger runs while it builds the row JSON.
        var (mallory, schema) = await CreateTableOwnerAsync();
        await Installer.EnableTableAsync(new PgTableName(schema, "t"), PostgresFixture.NewName("ch"), lossless: true);
        await RoleSession.ExecuteAsync(db, mallory, $"""
            CREATE TYPE {schema}.evil AS ENUM ('x');
            CREATE FUNCTION {schema}.evil_json({schema}.evil) RETURNS json LANGUAGE plpgsql AS $$
            DECLARE v boolean; BEGIN v := {forged}; RETURN '"x"'::json; END $$;
            CREATE CAST ({schema}.evil AS json) WITH FUNCTION {schema}.evil_json({schema}.evil);
            ALTER TABLE {schema}.t ADD COLUMN e {schema}.evil;
            """);
        (await RoleSession.FailsAsync(db, mallory, $"INSERT INTO {schema}.t (id, e) VALUES (1, 'x')")).SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);

        // The writer holds no EXECUTE on the trigger function, and its real writes are still logged.
        (await db.ScalarAsync<bool>("SELECT has_function_privilege($1, 'pgnotify.notify_change()', 'EXECUTE')", writer)).Should().BeFalse();
        await RoleSession.ExecuteAsync(db, writer, $"INSERT INTO public.{PostgresFixture.Quote(victim)} VALUES (2, 'real')");
        var logged = await PayloadsOfAsync("public", victim);
        logged.Should().ContainSingle().Which.Should().Contain("real");
        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log WHERE payload LIKE '%forged%'")).Should().Be(0);
    }

    [Fact]
    public async Task Install_GrantsPublicOnlyUsageOnTheSchemaAndExecuteOnTheWriteHelper()
    {
        var nobody = await RoleSession.CreateRoleAsync(db, "nobody");

        (await db.ScalarAsync<bool>("SELECT has_schema_privilege($1, 'pgnotify', 'USAGE')", nobody)).Should().BeTrue();
        (await db.ScalarAsync<bool>("SELECT has_schema_privilege($1, 'pgnotify', 'CREATE')", nobody)).Should().BeFalse();
        (await db.ScalarAsync<long>(
            """
            SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'pgnotify'::regnamespace AND c.relkind IN ('r', 'S', 'v')
              AND (has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                   OR (c.relkind = 'S' AND has_sequence_privilege($1, c.oid, 'USAGE, SELECT, UPDATE')))
            """, nobody)).Should().Be(0);
        var executable = new List<string>();
        await using (var command = db.DataSource.CreateCommand(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'pgnotify'::regnamespace AND has_function_privilege($1, p.oid, 'EXECUTE')"))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = nobody });
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                executable.Add(reader.GetString(0));
            }
        }

        executable.Should().Equal("pgnotify.emit_change(oid,text,text,text,jsonb,jsonb)");
    }

    /// <summary>
    /// emit_change's caller check reads PG_CONTEXT, whose lines are translated per lc_messages. The formats below are
    /// PostgreSQL 15's own translations of "PL/pgSQL function %s line %d at %s" (some put the name first or last, or
    /// quote it); the check must accept PgNotify's trigger and refuse everything else in each of them.
    /// </summary>
    [Theory]
    [InlineData("PL/pgSQL function {0} line {1} at {2}", "assignment", "SQL statement \"{0}\"")]
    [InlineData("PL/pgSQL-Funktion {0} Zeile {1} bei {2}", "Zuweisung", "SQL-Anweisung »{0}«")]
    [InlineData("{0} PL/pgSQL fonksiyonu, {1}. satır, {2} içinde", "atama", "SQL ifadesi \"{0}\"")]
    [InlineData("在{2}的第{1}行的PL/pgSQL函数{0}", "赋值", "SQL 语句 \"{0}\"")]
    [InlineData("PL/pgSQL 함수 \"{0}\" 의 {1}번째 {2}", "지정", "SQL 문: \"{0}\"")]
    [InlineData("PL/pgSQL関数{0}の{1}行目 - {2}", "代入", "SQL文 \"{0}\"")]
    public async Task CallerCheck_AcceptsOnlyPgNotifysTrigger_InEveryMessageLanguage(string format, string assignment, string sqlStatement)
    {
        string Line(string signature, int line, string statement) => string.Format(System.Globalization.CultureInfo.InvariantCulture, format, signature, line, statement);
        var own = Line("pgnotify.call_stack()", 5, "GET DIAGNOSTICS");
        var helper = Line("pgnotify.emit_change(oid,text,text,text,jsonb,jsonb)", 16, assignment);

        async Task<bool> Accepts(params string[] below) =>
            await db.ScalarAsync<bool>("SELECT pgnotify.called_by_trigger($1)", string.Join('\n', [own, helper, .. below]));

        (await Accepts(Line("pgnotify.notify_change()", 12, assignment), "the writer's statement")).Should().BeTrue();
        (await Accepts(Line("pgnotify.notify_change()", 7, "PERFORM"))).Should().BeFalse("only the plain assignment is PgNotify's call");
        (await Accepts(Line("mallory.notify_change()", 12, assignment))).Should().BeFalse();
        (await Accepts(Line("mallory.\"pgnotify.notify_change()\"()", 12, assignment))).Should().BeFalse();
        (await Accepts(Line("\"pgnotify.notify_change()\"()", 12, assignment))).Should().BeFalse();
        (await Accepts(string.Format(System.Globalization.CultureInfo.InvariantCulture, sqlStatement, "SELECT 1"), Line("pgnotify.notify_change()", 12, assignment))).Should().BeFalse(
            "a cast or function that notify_change runs sits between it and emit_change");
        (await Accepts(Line("mallory.evil_json(mallory.evil)", 3, assignment), Line("pgnotify.notify_change()", 12, assignment))).Should().BeFalse();
    }

    [Fact]
    public async Task CallerCheck_OnTheRealServer_HoldsInEveryMessageLanguageItHas()
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY");
        await Installer.EnableTableAsync(new PgTableName("public", table), PostgresFixture.NewName("ch"), lossless: true);
        var tried = 0;
        foreach (var language in new[] { "C", "de_DE.UTF-8", "tr_TR.UTF-8", "zh_CN.UTF-8", "ko_KR.UTF-8", "ja_JP.UTF-8" })
        {
            await using var connection = new NpgsqlConnection(db.ConnectionString + ";Pooling=false");
            await connection.OpenAsync();
            try
            {
                await using var set = new NpgsqlCommand($"SET lc_messages = '{language}'", connection);
                await set.ExecuteNonQueryAsync();
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InvalidParameterValue)
            {
                continue; // this server's machine does not have that locale
            }

            tried++;
            await using (var insert = new NpgsqlCommand($"INSERT INTO {PostgresFixture.Quote(table)} VALUES ({tried})", connection))
            {
                await insert.ExecuteNonQueryAsync();
            }

            await using var direct = new NpgsqlCommand($"SELECT pgnotify.emit_change('public.{PostgresFixture.Quote(table)}'::regclass, 'public', '{table}', 'INSERT', '{{}}', NULL)", connection);
            var refused = async () => await direct.ExecuteNonQueryAsync();
            (await refused.Should().ThrowAsync<PostgresException>()).Which.SqlState.Should().Be(PostgresErrorCodes.InsufficientPrivilege);
        }

        tried.Should().BeGreaterThan(0);
        (await db.ScalarAsync<long>("SELECT count(*) FROM pgnotify.change_log WHERE payload::jsonb ->> 'table' = $1", table)).Should().Be(tried);
    }

    /// <summary>A role that owns a schema of its own and a table in it, <c>t</c>, with a <c>password_hash</c> column.</summary>
    private async Task<(string Role, string Schema)> CreateTableOwnerAsync()
    {
        var mallory = await RoleSession.CreateRoleAsync(db, "mallory");
        var schema = mallory;
        await db.ExecuteAsync($"CREATE SCHEMA {schema} AUTHORIZATION {mallory}");
        await db.ExecuteAsync($"CREATE TABLE {schema}.t (id int PRIMARY KEY, password_hash text, name text); ALTER TABLE {schema}.t OWNER TO {mallory}");
        return (mallory, schema);
    }

    private async Task<List<string>> PayloadsOfAsync(string schema, string table = "t")
    {
        var payloads = new List<string>();
        await using var command = db.DataSource.CreateCommand(
            "SELECT payload FROM pgnotify.change_log WHERE payload::jsonb ->> 'schema' = $1 AND payload::jsonb ->> 'table' = $2 ORDER BY position");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = schema });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = table });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            payloads.Add(reader.GetString(0));
        }

        return payloads;
    }
}
