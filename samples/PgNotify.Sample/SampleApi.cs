using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PgNotify.Sample;

/// <summary>
/// The JSON endpoints the pages use: the list of watched tables, and small add/edit/delete endpoints for the three
/// sample tables. Writes go straight to PostgreSQL: the pages learn about them, like about any other change, from the
/// WebSocket, which also gives them each table's current rows (a snapshot) to start from.
/// </summary>
internal static class SampleApi
{
    public static void MapSampleApi(this WebApplication app)
    {
        var api = app.MapGroup("/api");

        // The tables PgNotify streams (configuration: PgNotify:Tables), so the page subscribes to all of them.
        api.MapGet("/tables", (IOptions<PgNotifyOptions> options) => Results.Ok(new { tables = options.Value.Tables }));

        api.MapPost("/profiles", async (ProfileInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Name)
                ? NameRequired()
                : await ExecuteAsync(db, "INSERT INTO profiles (name, email, user_id, password_hash) VALUES ($1, $2, $3, $4) RETURNING id",
                    input.Name.Trim(), Blank(input.Email), input.UserId, HashPassword(input.Password)));
        api.MapPut("/profiles/{id:int}", async (int id, ProfileInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Name)
                ? NameRequired()
                : await ExecuteAsync(db, "UPDATE profiles SET name = $2, email = $3, user_id = $4 WHERE id = $1 RETURNING id",
                    id, input.Name.Trim(), Blank(input.Email), input.UserId));
        api.MapDelete("/profiles/{id:int}", (int id, NpgsqlDataSource db) =>
            ExecuteAsync(db, "DELETE FROM profiles WHERE id = $1 RETURNING id", id));

        api.MapPost("/registrations", async (RegistrationInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Event)
                ? Results.ValidationProblem(new Dictionary<string, string[]> { ["event"] = ["An event is required."] })
                : await ExecuteAsync(db, "INSERT INTO registrations (profile_id, event) VALUES ($1, $2) RETURNING id",
                    input.ProfileId, input.Event.Trim()));
        api.MapPut("/registrations/{id:int}", async (int id, RegistrationInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Event)
                ? Results.ValidationProblem(new Dictionary<string, string[]> { ["event"] = ["An event is required."] })
                : await ExecuteAsync(db, "UPDATE registrations SET profile_id = $2, event = $3 WHERE id = $1 RETURNING id",
                    id, input.ProfileId, input.Event.Trim()));
        api.MapDelete("/registrations/{id:int}", (int id, NpgsqlDataSource db) =>
            ExecuteAsync(db, "DELETE FROM registrations WHERE id = $1 RETURNING id", id));

        api.MapPost("/roles", async (RoleInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Name)
                ? NameRequired()
                : await ExecuteAsync(db, "INSERT INTO roles (name) VALUES ($1) RETURNING id", input.Name.Trim()));
        api.MapPut("/roles/{id:int}", async (int id, RoleInput input, NpgsqlDataSource db) =>
            string.IsNullOrWhiteSpace(input.Name)
                ? NameRequired()
                : await ExecuteAsync(db, "UPDATE roles SET name = $2 WHERE id = $1 RETURNING id", id, input.Name.Trim()));
        api.MapDelete("/roles/{id:int}", (int id, NpgsqlDataSource db) =>
            ExecuteAsync(db, "DELETE FROM roles WHERE id = $1 RETURNING id", id));
    }

    /// <summary>
    /// Runs a statement that returns the row's id: 200 with it, 404 when no row matched, 409 on a duplicate. A pooled
    /// connection whose backend was terminated meanwhile (57P01, e.g. by a database restart) fails before the statement
    /// runs: it is run once more on a fresh connection.
    /// </summary>
    private static async Task<IResult> ExecuteAsync(NpgsqlDataSource db, string sql, params object?[] values)
    {
        for (var attempt = 1; ; attempt++)
        {
            await using var command = db.CreateCommand(sql);
            foreach (var value in values)
            {
                command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
            }

            try
            {
                var id = await command.ExecuteScalarAsync();
                return id is null ? Results.NotFound() : Results.Ok(new { id });
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                return Results.Conflict(new { error = e.MessageText });
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.AdminShutdown && attempt == 1)
            {
                // The statement never ran on that connection; Npgsql has dropped it.
            }
        }
    }

    private static IResult NameRequired() =>
        Results.ValidationProblem(new Dictionary<string, string[]> { ["name"] = ["A name is required."] });

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();

    /// <summary>PBKDF2 (SHA-256, 100,000 iterations, 16-byte salt): the column PgNotify never lets leave the database.</summary>
    private static string? HashPassword(string? password)
    {
        if (string.IsNullOrEmpty(password))
        {
            return null;
        }

        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, 100_000, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256$100000${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }
}

internal sealed record ProfileInput(string? Name, string? Email, int? UserId, string? Password);

internal sealed record RegistrationInput(int? ProfileId, string? Event);

internal sealed record RoleInput(string? Name);
