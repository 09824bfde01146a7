using System.Diagnostics;
using System.Net.Sockets;
using Npgsql;
using Testcontainers.PostgreSql;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// The PostgreSQL server the tests run against, found once per test run:
/// 1. the connection string in PGNOTIFY_TEST_CONNECTION (scripts/test.sh sets it to the local cluster);
/// 2. otherwise, where a Docker engine answers, a Testcontainers PostgreSQL;
/// 3. otherwise the local cluster of scripts/pg.sh on 127.0.0.1:54329.
/// With none of them, every test fails with a message that says how to get one.
/// </summary>
public sealed class PostgresServer
{
    private static readonly Lazy<Task<PostgresServer>> Instance = new(FindAsync);
    private readonly string? _stopCommand;
    private readonly string? _startCommand;

    private PostgresServer(string adminConnectionString, string source, string? stopCommand, string? startCommand)
    {
        AdminConnectionString = adminConnectionString;
        Source = source;
        _stopCommand = stopCommand;
        _startCommand = startCommand;
    }

    public string AdminConnectionString { get; }

    public string Source { get; }

    /// <summary>Whether the tests may stop and start this server (PGNOTIFY_TEST_STOP_COMMAND / START_COMMAND, or the local script).</summary>
    public bool CanStopAndStart => _stopCommand is not null && _startCommand is not null;

    public static Task<PostgresServer> GetAsync() => Instance.Value;

    /// <summary>Another cluster a test class started itself (not stopped or started by the tests).</summary>
    public static PostgresServer Other(string adminConnectionString, string source) => new(adminConnectionString, source, null, null);

    public Task StopAsync() => RunAsync(_stopCommand ?? throw new InvalidOperationException("This server cannot be stopped by the tests."));

    public Task StartAsync() => RunAsync(_startCommand ?? throw new InvalidOperationException("This server cannot be started by the tests."));

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "PgNotify.sln")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("Cannot find the repository root (PgNotify.sln) above " + AppContext.BaseDirectory);
        }
    }

    private static async Task<PostgresServer> FindAsync()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("PGNOTIFY_TEST_CONNECTION");
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            await EnsureReachableAsync(fromEnvironment, "PGNOTIFY_TEST_CONNECTION");
            return new PostgresServer(
                fromEnvironment,
                "PGNOTIFY_TEST_CONNECTION",
                Environment.GetEnvironmentVariable("PGNOTIFY_TEST_STOP_COMMAND"),
                Environment.GetEnvironmentVariable("PGNOTIFY_TEST_START_COMMAND"));
        }

        if (DockerAnswers())
        {
            var container = new PostgreSqlBuilder("postgres:15-alpine").Build();
            await container.StartAsync();
            return new PostgresServer(container.GetConnectionString(), "Testcontainers", null, null);
        }

        const string local = "Host=127.0.0.1;Port=54329;Username=postgres;Database=postgres";
        await EnsureReachableAsync(local, "the local cluster of scripts/pg.sh");
        var script = Path.Combine(RepositoryRoot, "scripts", "pg.sh");
        return new PostgresServer(local, "scripts/pg.sh", $"bash '{script}' stop", $"bash '{script}' start");
    }

    private static async Task EnsureReachableAsync(string connectionString, string what)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
        }
        catch (Exception ex) when (ex is NpgsqlException or ArgumentException or TimeoutException)
        {
            throw new InvalidOperationException(
                $"No PostgreSQL for the tests: {what} did not answer ({ex.Message}). " +
                "Run the tests with `bash scripts/test.sh` (it starts a local PostgreSQL), or start one with " +
                "`bash scripts/pg.sh start`, or set PGNOTIFY_TEST_CONNECTION to a server's connection string, " +
                "or run a Docker engine for Testcontainers.", ex);
        }
    }

    private static bool DockerAnswers()
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        var socketPath = host is not null && host.StartsWith("unix://", StringComparison.Ordinal) ? host["unix://".Length..] : "/var/run/docker.sock";
        if (host is not null && !host.StartsWith("unix://", StringComparison.Ordinal))
        {
            return true; // a TCP Docker host: let Testcontainers try it
        }

        if (!File.Exists(socketPath))
        {
            return false;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static async Task RunAsync(string command)
    {
        using var process = Process.Start(new ProcessStartInfo("bash", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"'{command}' failed ({process.ExitCode}): {await stdout} {await stderr}");
        }
    }
}
