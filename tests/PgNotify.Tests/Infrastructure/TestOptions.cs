using Microsoft.Extensions.Logging;

namespace PgNotify.Tests.Infrastructure;

/// <summary>The PgNotify options every test host starts from: its database, its own channel and tables, fast reconnects.</summary>
public static class TestOptions
{
    /// <summary>PGNOTIFY_TEST_LOGLEVEL (default Warning): the level the test hosts log at.</summary>
    public static LogLevel LogLevel => Enum.Parse<LogLevel>(Environment.GetEnvironmentVariable("PGNOTIFY_TEST_LOGLEVEL") ?? "Warning");

    public static void Apply(PgNotifyOptions options, string connectionString, string channel, IEnumerable<string> tables)
    {
        options.ConnectionString = connectionString;
        options.Channel = channel;
        foreach (var table in tables)
        {
            options.Tables.Add(table);
        }

        options.ReconnectInitialDelay = TimeSpan.FromMilliseconds(100);
        options.ReconnectMaxDelay = TimeSpan.FromSeconds(1);
    }
}
