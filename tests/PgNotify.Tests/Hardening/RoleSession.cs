using Npgsql;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Hardening;

/// <summary>Runs SQL as another database role (SET ROLE on a connection of its own), as that role's own session would.</summary>
public static class RoleSession
{
    /// <summary>Creates a role with a unique name (roles are cluster-wide) and returns it.</summary>
    public static async Task<string> CreateRoleAsync(PostgresFixture db, string prefix, string attributes = "NOLOGIN")
    {
        var role = PostgresFixture.NewName(prefix);
        await db.ExecuteAsync($"CREATE ROLE {role} {attributes}");
        return role;
    }

    /// <summary>Runs <paramref name="sql"/> as <paramref name="role"/>.</summary>
    public static async Task ExecuteAsync(PostgresFixture db, string role, string sql)
    {
        await using var connection = new NpgsqlConnection(db.ConnectionString + ";Pooling=false");
        await connection.OpenAsync();
        await using (var setRole = new NpgsqlCommand($"SET ROLE {role}", connection))
        {
            await setRole.ExecuteNonQueryAsync();
        }

        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs <paramref name="sql"/> as <paramref name="role"/> and returns the error it must fail with.</summary>
    public static async Task<PostgresException> FailsAsync(PostgresFixture db, string role, string sql)
    {
        var act = () => ExecuteAsync(db, role, sql);
        return (await act.Should().ThrowAsync<PostgresException>($"'{sql}' run as {role} must fail")).Which;
    }
}
