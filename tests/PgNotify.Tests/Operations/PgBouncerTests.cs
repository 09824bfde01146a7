using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Operations;

/// <summary>
/// LISTEN cannot work through pgbouncer's transaction pooling: PgNotify must refuse it at startup with a clear
/// error, and accept session pooling. Runs Debian's real pgbouncer (scripts/test.sh installs it).
/// </summary>
public sealed class PgBouncerTests(PostgresFixture db) : IClassFixture<PostgresFixture>
{
    private const string Binary = "/usr/sbin/pgbouncer";

    [SkippableTheory]
    [InlineData("transaction", true)]
    [InlineData("session", false)]
    public async Task Startup_ThroughPgBouncer_RefusesTransactionPoolingAndAcceptsSessionPooling(string poolMode, bool refused)
    {
        Skip.IfNot(File.Exists(Binary), "pgbouncer is not installed (apt-get install pgbouncer; scripts/test.sh does it).");
        var table = await db.CreateTableAsync();
        await using var bouncer = await PgBouncer.StartAsync(db.ConnectionString, poolMode);

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddPgNotifyCore(o =>
        {
            o.ConnectionString = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Port = bouncer.Port, NoResetOnClose = true }.ConnectionString;
            o.Tables.Add(table);
            o.InstallTriggers = false;
        });
        using var host = builder.Build();
        var start = () => host.StartAsync();

        if (refused)
        {
            (await start.Should().ThrowAsync<InvalidOperationException>())
                .Which.Message.Should().Contain("transaction mode").And.Contain("pgbouncer").And.Contain("session mode");
        }
        else
        {
            await start.Should().NotThrowAsync();
            await host.StopAsync();
        }
    }

    private sealed class PgBouncer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _directory;

        private PgBouncer(Process process, string directory, int port)
        {
            _process = process;
            _directory = directory;
            Port = port;
        }

        public int Port { get; }

        public static async Task<PgBouncer> StartAsync(string connectionString, string poolMode)
        {
            var target = new NpgsqlConnectionStringBuilder(connectionString);
            var directory = Directory.CreateTempSubdirectory("pgbouncer-").FullName;
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(directory, (UnixFileMode)Convert.ToInt32("777", 8));
            }
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            await File.WriteAllTextAsync(Path.Combine(directory, "users.txt"), $"\"{target.Username}\" \"\"\n");
            await File.WriteAllTextAsync(Path.Combine(directory, "pgbouncer.ini"), $"""
                [databases]
                * = host={target.Host} port={target.Port}

                [pgbouncer]
                listen_addr = 127.0.0.1
                listen_port = {port}
                unix_socket_dir =
                auth_type = trust
                auth_file = {directory}/users.txt
                pool_mode = {poolMode}
                default_pool_size = 4
                max_client_conn = 50
                ignore_startup_parameters = extra_float_digits,search_path,options
                logfile = {directory}/pgbouncer.log
                pidfile = {directory}/pgbouncer.pid
                """);
            // pgbouncer refuses to run as root.
            var asRoot = Environment.UserName == "root";
            var start = new ProcessStartInfo(asRoot ? "runuser" : Binary)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            if (asRoot)
            {
                foreach (var arg in new[] { "-u", "postgres", "--", Binary })
                {
                    start.ArgumentList.Add(arg);
                }
            }

            start.ArgumentList.Add(Path.Combine(directory, "pgbouncer.ini"));
            var process = Process.Start(start)!;
            var bouncer = new PgBouncer(process, directory, port);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (true)
            {
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port);
                    return bouncer;
                }
                catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                    await Task.Delay(50);
                }
                catch (SocketException)
                {
                    var log = File.Exists(Path.Combine(directory, "pgbouncer.log")) ? await File.ReadAllTextAsync(Path.Combine(directory, "pgbouncer.log")) : "";
                    throw new InvalidOperationException($"pgbouncer did not start: {await process.StandardError.ReadToEndAsync()} {log}");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
