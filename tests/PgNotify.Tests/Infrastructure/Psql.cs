using System.Diagnostics;
using Npgsql;

namespace PgNotify.Tests.Infrastructure;

/// <summary>Runs the real psql client, as a user typing SQL by hand would.</summary>
public static class Psql
{
    public static string Executable
    {
        get
        {
            foreach (var candidate in new[] { "/usr/bin/psql", "/usr/local/bin/psql" }.Concat(
                Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin", "psql")) : []))
            {
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new InvalidOperationException("psql is not installed (apt-get install postgresql-client).");
        }
    }

    public static async Task<string> RunAsync(string connectionString, string sql)
    {
        var cs = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(Executable, ["-v", "ON_ERROR_STOP=1", "-X", "-q", "-h", cs.Host!, "-p", cs.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", cs.Username!, "-d", cs.Database!, "-c", sql])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (cs.Password is not null)
        {
            start.Environment["PGPASSWORD"] = cs.Password;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"psql failed ({process.ExitCode}): {await stderr}");
        }

        return await stdout;
    }
}
