using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.FileProviders;
using Npgsql;
using PgNotify.Client.Tests.Infrastructure;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Host;

/// <summary>
/// PgNotify.Client in Blazor WebAssembly: the page of tests/blazor (published by scripts/test.d/blazor.sh, which sets
/// PGNOTIFY_BLAZOR_WWWROOT), served by a real PgNotify host, opened in Debian's headless Chromium, shows rows inserted,
/// updated and deleted with psql. Without the published page (a plain <c>dotnet test</c>) it is skipped.
/// </summary>
public sealed class BlazorWebAssemblyTests(PostgresFixture db) : ClientTestBase(db)
{
    [SkippableFact]
    public async Task BlazorWebAssemblyPage_InChromium_ShowsRowsWrittenWithPsql()
    {
        var wwwroot = Environment.GetEnvironmentVariable("PGNOTIFY_BLAZOR_WWWROOT");
        Skip.If(string.IsNullOrEmpty(wwwroot), "the Blazor page is not published here: scripts/test.d/blazor.sh publishes it and runs this test");
        var table = await Db.CreateTableAsync();
        await Psql.RunAsync(Db.ConnectionString, $"INSERT INTO {PostgresFixture.Quote(table)} VALUES (1, 'there before')");
        var files = new PhysicalFileProvider(wwwroot!);
        var host = Own(await WebHost.StartAsync(Db.ConnectionString, PostgresFixture.NewName("ch"), [table], configureApp: app =>
        {
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files, ContentTypeProvider = new FileExtensionContentTypeProvider(), ServeUnknownFileTypes = true });
            app.UsePgChangeWebSockets();
        }));

        var cs = new NpgsqlConnectionStringBuilder(Db.ConnectionString);
        var start = new ProcessStartInfo("node", [Path.Combine(PostgresServer.RepositoryRoot, "tests", "blazor", "page.mjs"), host.BaseAddress.ToString(), PostgresServer.RepositoryRoot,
            cs.Host!, cs.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), cs.Username!, cs.Database!, table])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["PGNOTIFY_PSQL"] = Psql.Executable;
        if (cs.Password is not null)
        {
            start.Environment["PGPASSWORD"] = cs.Password;
        }

        using var page = Process.Start(start)!;
        var stdout = page.StandardOutput.ReadToEndAsync();
        var stderr = page.StandardError.ReadToEndAsync();
        await page.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));

        page.ExitCode.Should().Be(0, $"the page must show the rows: {await stdout} {await stderr}");
        (await stderr).Should().Contain("the Blazor WebAssembly page showed [\"inserted with psql\",\"renamed with psql\"]");
    }
}
