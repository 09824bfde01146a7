using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// Defect 10 (grants): the owner installs the SQL and enables the table; the app connects as another role that holds
/// exactly the grants docs/security.md (or docs/quickstart.md) gives, read from the page itself, with InstallTriggers off.
/// </summary>
public sealed class NonOwnerAppRoleTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    [Theory]
    [InlineData("security.md", false)]
    [InlineData("security.md", true)]
    [InlineData("quickstart.md", false)]
    [InlineData("quickstart.md", true)]
    public async Task NonOwnerAppRole_WithTheDocumentedGrants_ReceivesSmallAndOversizedRows(string page, bool lossless)
    {
        var table = await db.CreateTableAsync("id int PRIMARY KEY, body text");
        var channel = PostgresFixture.NewName("ch");
        await new PgNotifyInstaller(db.DataSource).EnableTableAsync(new PgTableName("public", table), channel, lossless: lossless);
        var app = await RoleSession.CreateRoleAsync(db, "app", "LOGIN");
        if (page == "security.md")
        {
            await db.ExecuteAsync(DocumentedGrants(page, "grants:live", app));
            if (lossless)
            {
                await db.ExecuteAsync(DocumentedGrants(page, "grants:lossless", app));
            }
        }
        else
        {
            var lines = DocumentedGrants(page, "grants:quickstart", app).Split('\n');
            await db.ExecuteAsync(string.Join('\n', lines.Where(l => lossless || !l.Contains("lossless only", StringComparison.Ordinal))));
        }

        var appConnection = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = app, Password = null }.ConnectionString;
        await using var host = await CoreHost.StartAsync(appConnection, channel, [table], o =>
        {
            o.InstallTriggers = false;
            o.LosslessDelivery = lossless;
        });

        // The owner writes; a row over NOTIFY's 8000 bytes goes through pgnotify.large_payload in live mode.
        var big = new string('x', 9_000);
        await db.ExecuteAsync($"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'small'), (2, $1)", big);

        var changes = await host.Changes.NextChangesAsync(2);
        changes.Select(c => c.Data!.Value.GetProperty("body").GetString()).Should().Equal("small", big);
    }

    /// <summary>The SQL block after <c>&lt;!-- marker --&gt;</c> in docs/<paramref name="file"/>, for <paramref name="role"/>.</summary>
    private static string DocumentedGrants(string file, string marker, string role)
    {
        var page = File.ReadAllText(Path.Combine(PostgresServer.RepositoryRoot, "docs", file));
        var start = page.IndexOf($"<!-- {marker} -->", StringComparison.Ordinal);
        start.Should().BeGreaterThan(0, $"docs/{file} must hold the <!-- {marker} --> block");
        var open = page.IndexOf("```sql\n", start, StringComparison.Ordinal) + "```sql\n".Length;
        var close = page.IndexOf("```", open, StringComparison.Ordinal);
        var sql = page[open..close];
        sql.Should().Contain("pgnotify_app");
        return sql.Replace("pgnotify_app", role, StringComparison.Ordinal);
    }
}
