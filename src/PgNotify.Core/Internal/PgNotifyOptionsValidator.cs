using System.Text;
using Microsoft.Extensions.Options;

namespace PgNotify.Internal;

/// <summary>Validates <see cref="PgNotifyOptions"/> at startup with messages that say what to change.</summary>
internal sealed class PgNotifyOptionsValidator : IValidateOptions<PgNotifyOptions>
{
    public ValidateOptionsResult Validate(string? name, PgNotifyOptions options)
    {
        var errors = new List<string>();

        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            errors.Add(
                $"PgNotify has no connection string. Set 'ConnectionStrings:{options.ConnectionStringName}' " +
                $"(environment variable ConnectionStrings__{options.ConnectionStringName}) or 'PgNotify:ConnectionString'.");
        }
        else
        {
            try
            {
                _ = new Npgsql.NpgsqlConnectionStringBuilder(options.ConnectionString);
            }
            catch (ArgumentException ex)
            {
                errors.Add($"PgNotify's connection string is not valid: {ex.Message}");
            }
        }

        if (string.IsNullOrEmpty(options.Channel) || Encoding.UTF8.GetByteCount(options.Channel) > PgTableName.MaxIdentifierBytes
            || options.Channel.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"PgNotify:Channel '{options.Channel}' must be 1 to {PgTableName.MaxIdentifierBytes} bytes long, without NUL characters.");
        }

        var tables = new HashSet<PgTableName>();
        foreach (var table in options.Tables)
        {
            if (!PgTableName.TryParse(table, out var parsed, out var error))
            {
                errors.Add($"PgNotify:Tables: {error}");
            }
            else if (!tables.Add(parsed))
            {
                errors.Add($"PgNotify:Tables lists '{table}' twice.");
            }
        }

        foreach (var (table, columns) in options.ExcludedColumns)
        {
            if (!PgTableName.TryParse(table, out var parsed, out var error))
            {
                errors.Add($"PgNotify:ExcludedColumns: {error}");
            }
            else if (!tables.Contains(parsed))
            {
                errors.Add($"PgNotify:ExcludedColumns names '{table}', which is not in PgNotify:Tables. Add it there or remove the entry.");
            }

            if (columns.Any(string.IsNullOrEmpty))
            {
                errors.Add($"PgNotify:ExcludedColumns:{table} has an empty column name.");
            }
        }

        Positive(errors, options.ConsumerCapacity, nameof(options.ConsumerCapacity));
        Positive(errors, options.InboxCapacity, nameof(options.InboxCapacity));
        Positive(errors, options.MaxConcurrentReplays, nameof(options.MaxConcurrentReplays));
        Positive(errors, options.MaxConcurrentSnapshots, nameof(options.MaxConcurrentSnapshots));
        if (options.MaxConcurrentSnapshots > 1000)
        {
            errors.Add($"PgNotify:MaxConcurrentSnapshots is {options.MaxConcurrentSnapshots}: each is a PostgreSQL connection of its own; use at most 1000 (a few per core of the database is plenty).");
        }
        Positive(errors, options.MaxChangeLogHoles, nameof(options.MaxChangeLogHoles));
        Positive(errors, options.ReconnectInitialDelay, nameof(options.ReconnectInitialDelay));
        Positive(errors, options.HealthCheckInterval, nameof(options.HealthCheckInterval));
        Positive(errors, options.LargePayloadRetention, nameof(options.LargePayloadRetention));
        Positive(errors, options.MaintenanceInterval, nameof(options.MaintenanceInterval));
        Positive(errors, options.ChangeLogRetention, nameof(options.ChangeLogRetention));
        Positive(errors, options.ChangeLogPollInterval, nameof(options.ChangeLogPollInterval));
        if (options.ChangeLogMaxRows <= 0)
        {
            errors.Add($"PgNotify:ChangeLogMaxRows must be greater than zero (it is {options.ChangeLogMaxRows}).");
        }

        if (options.HealthCheckTimeout < TimeSpan.FromSeconds(1))
        {
            errors.Add($"PgNotify:HealthCheckTimeout must be at least 1 second (it is {options.HealthCheckTimeout}).");
        }

        if (options.ReconnectMaxDelay < options.ReconnectInitialDelay)
        {
            errors.Add($"PgNotify:ReconnectMaxDelay ({options.ReconnectMaxDelay}) must not be less than ReconnectInitialDelay ({options.ReconnectInitialDelay}).");
        }

        if (options.Source == PgChangeSourceKind.Replication)
        {
            Positive(errors, options.ReplicationHistorySize, nameof(options.ReplicationHistorySize));
            Positive(errors, options.ReplicationSlotIdleTimeout, nameof(options.ReplicationSlotIdleTimeout));
            if (options.InstanceName is { } instance && (instance.Length == 0 || instance.Length > 54))
            {
                errors.Add($"PgNotify:InstanceName '{instance}' must be 1 to 54 characters long (it names the replication slot 'pgnotify_<name>', at most 63).");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Positive(List<string> errors, int value, string name)
    {
        if (value <= 0)
        {
            errors.Add($"PgNotify:{name} must be greater than zero (it is {value}).");
        }
    }

    private static void Positive(List<string> errors, TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"PgNotify:{name} must be greater than zero (it is {value}).");
        }
    }
}
