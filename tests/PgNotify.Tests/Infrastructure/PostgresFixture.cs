using Npgsql;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// A fresh database per test class on the run's <see cref="PostgresServer"/>, with PgNotify's SQL installed.
/// Tests create their own tables and channels (GUID suffixes), so they run in parallel.
/// </summary>
public class PostgresFixture : IAsyncLifetime
{
    private NpgsqlDataSource? _dataSource;

    public PostgresServer Server { get; private set; } = null!;

    public string ConnectionString { get; private set; } = "";

    public string DatabaseName { get; } = "pgnotify_test_" + Guid.NewGuid().ToString("N")[..12];

    public NpgsqlDataSource DataSource => _dataSource ?? throw new InvalidOperationException("The fixture has not started.");

    public virtual async Task InitializeAsync()
    {
        Server = await FindServerAsync();
        await using (var admin = new NpgsqlConnection(Server.AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{DatabaseName}\"", admin);
            await create.ExecuteNonQueryAsync();
        }

        ConnectionString = new NpgsqlConnectionStringBuilder(Server.AdminConnectionString) { Database = DatabaseName }.ConnectionString;
        _dataSource = NpgsqlDataSource.Create(ConnectionString);
        await new PgNotifyInstaller(_dataSource).InstallAsync();
    }

    /// <summary>The server the database is made on: the run's own, unless a fixture brings another cluster.</summary>
    protected virtual Task<PostgresServer> FindServerAsync() => PostgresServer.GetAsync();

    public virtual async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        NpgsqlConnection.ClearAllPools();
        try
        {
            await using var admin = new NpgsqlConnection(Server.AdminConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{DatabaseName}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
            // A server stopped by a test is started again by it; a leftover database is harmless.
        }
    }

    /// <summary>
    /// Terminates PgNotify listener backends on this database, as production loses them (<c>pg_terminate_backend</c>).
    /// </summary>
    /// <returns>How many were terminated.</returns>
    public Task<long> TerminateListenersAsync() => ScalarAsync<long>(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'PgNotify listener' AND datname = current_database()) t");

    public static string NewName(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>Creates a table with a unique name and the given column list, and returns its name.</summary>
    public async Task<string> CreateTableAsync(string columns = "id int PRIMARY KEY, name text", string? name = null)
    {
        name ??= NewName("t");
        await ExecuteAsync($"CREATE TABLE {Quote(name)} ({columns})");
        return name;
    }

    public async Task ExecuteAsync(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = parameter ?? DBNull.Value });
        }

        return (T)(await command.ExecuteScalarAsync())!;
    }

    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
