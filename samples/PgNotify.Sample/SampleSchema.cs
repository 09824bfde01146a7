using Npgsql;

namespace PgNotify.Sample;

/// <summary>Creates the sample's tables when they are missing, before PgNotify's listener enables their triggers.</summary>
internal sealed partial class SampleSchema(NpgsqlDataSource dataSource, ILogger<SampleSchema> logger) : IHostedService
{
    private const string Sql = """
        CREATE TABLE IF NOT EXISTS profiles (
            id serial PRIMARY KEY,
            name text NOT NULL,
            email text,
            user_id int,
            password_hash text
        );
        CREATE TABLE IF NOT EXISTS registrations (
            id serial PRIMARY KEY,
            profile_id int,
            event text NOT NULL,
            created_at timestamptz DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS roles (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE
        );
        """;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(Sql);
        await command.ExecuteNonQueryAsync(cancellationToken);
        LogReady(logger);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(1, LogLevel.Information, "Sample tables ready: profiles, registrations, roles")]
    private static partial void LogReady(ILogger logger);
}
