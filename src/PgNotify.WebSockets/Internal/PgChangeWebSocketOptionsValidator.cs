using Microsoft.Extensions.Options;

namespace PgNotify.WebSockets.Internal;

/// <summary>Validates <see cref="PgChangeWebSocketOptions"/> at startup, saying what to change.</summary>
internal sealed class PgChangeWebSocketOptionsValidator(IOptions<PgNotifyOptions> notifyOptions) : IValidateOptions<PgChangeWebSocketOptions>
{
    public ValidateOptionsResult Validate(string? name, PgChangeWebSocketOptions options)
    {
        var errors = new List<string>();
        var watched = new HashSet<PgTableName>();
        foreach (var table in notifyOptions.Value.Tables)
        {
            if (PgTableName.TryParse(table, out var parsed))
            {
                watched.Add(parsed);
            }
        }

        foreach (var table in options.ExposedTables)
        {
            if (!PgTableName.TryParse(table, out var parsed, out var error))
            {
                errors.Add($"PgNotify:WebSockets:ExposedTables: {error}");
            }
            else if (!watched.Contains(parsed))
            {
                errors.Add($"PgNotify:WebSockets:ExposedTables names '{table}', which is not in PgNotify:Tables: add it there so its changes are streamed.");
            }
        }

        foreach (var origin in options.AllowedOrigins)
        {
            if (origin != "*" && (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.PathAndQuery.Length > 1))
            {
                errors.Add($"PgNotify:WebSockets:AllowedOrigins entry '{origin}' must be an origin like https://app.example.com (scheme, host, optional port), or *.");
            }
        }

        Positive(errors, options.MaxConnections, nameof(options.MaxConnections));
        Positive(errors, options.MaxMessageBytes, nameof(options.MaxMessageBytes));
        Positive(errors, options.MaxSubscriptionsPerSocket, nameof(options.MaxSubscriptionsPerSocket));
        Positive(errors, options.MaxMessagesPerSecond, nameof(options.MaxMessagesPerSecond));
        Positive(errors, options.SendQueueCapacity, nameof(options.SendQueueCapacity));
        Positive(errors, options.SendQueueMaxBytes, nameof(options.SendQueueMaxBytes));
        Positive(errors, options.MaxConnectionsPerClient, nameof(options.MaxConnectionsPerClient));
        Positive(errors, options.MaxSnapshotRows, nameof(options.MaxSnapshotRows));
        if (options.MaxSnapshotRows > 1_000_000)
        {
            errors.Add($"PgNotify:WebSockets:MaxSnapshotRows is {options.MaxSnapshotRows}: a snapshot is sent to one socket at once; use at most 1,000,000 rows and page larger tables with filters.");
        }

        if (options.SnapshotTimeout <= TimeSpan.Zero)
        {
            errors.Add("PgNotify:WebSockets:SnapshotTimeout must be greater than zero.");
        }
        if (options.ReauthorizeInterval < TimeSpan.Zero)
        {
            errors.Add("PgNotify:WebSockets:ReauthorizeInterval must not be negative (zero turns re-authorization off).");
        }
        if (options.SubscribeTimeout <= TimeSpan.Zero)
        {
            errors.Add("PgNotify:WebSockets:SubscribeTimeout must be greater than zero.");
        }

        if (options.WriteCoalescingDelay < TimeSpan.Zero || options.WriteCoalescingDelay > TimeSpan.FromSeconds(1))
        {
            errors.Add($"PgNotify:WebSockets:WriteCoalescingDelay is {options.WriteCoalescingDelay}: it must be between zero (off) and 1 second (a few milliseconds is what it is for).");
        }

        if (options.KeepAliveInterval < TimeSpan.Zero || options.KeepAliveTimeout < TimeSpan.Zero)
        {
            errors.Add("PgNotify:WebSockets:KeepAliveInterval and KeepAliveTimeout must not be negative (zero turns them off).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Positive(List<string> errors, int value, string name)
    {
        if (value <= 0)
        {
            errors.Add($"PgNotify:WebSockets:{name} must be greater than zero (it is {value}).");
        }
    }
}
