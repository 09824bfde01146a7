using System.Diagnostics;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// Starts a cluster of its own with scripts/pg.sh (idempotent) on <c>port</c>, made with one setting of pg.sh's
/// environment (e.g. <c>PGNOTIFY_PG_RESETWAL_FILE</c>), one process at a time: both test projects may run at once. It
/// is left running like the run's own; <c>PGNOTIFY_PG_PORT=&lt;port&gt; bash scripts/pg.sh stop</c> stops it.
/// </summary>
public static class ThrowawayCluster
{
    public static async Task<string> StartAsync(string port, string variable, string value)
    {
        var lockPath = Path.Combine(Path.GetTempPath(), $"pgnotify-pg-{port}.start-lock");
        FileStream? held = null;
        for (var attempt = 0; held is null; attempt++)
        {
            try
            {
                held = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 600)
            {
                await Task.Delay(100); // another test process is starting the cluster: polled, not asserted
            }
        }

        await using (held)
        {
            await PgShAsync("start", port, new Dictionary<string, string?> { [variable] = value, ["PGNOTIFY_PG_WAL_LEVEL"] = null });
        }

        return $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres";
    }

    /// <summary>Runs <c>scripts/pg.sh verb</c> for the cluster on <paramref name="port"/>; a null value removes that variable.</summary>
    public static async Task PgShAsync(string verb, string port, IReadOnlyDictionary<string, string?> environment)
    {
        var info = new ProcessStartInfo("bash", [Path.Combine(PostgresServer.RepositoryRoot, "scripts", "pg.sh"), verb])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["PGNOTIFY_PG_PORT"] = port;
        foreach (var (name, value) in environment)
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }

        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, await stderr);
    }
}
