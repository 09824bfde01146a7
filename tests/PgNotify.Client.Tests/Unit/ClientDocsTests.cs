using System.Reflection;
using Microsoft.Extensions.Logging;
using PgNotify.Client;
using PgNotify.Client.Internal;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Client.Tests.Unit;

/// <summary>The docs list every event id the client logs with, and the ids stay in the client's range.</summary>
public sealed class ClientDocsTests
{
    [Fact]
    public void ObservabilityMd_ListsEveryClientEventId_AndEveryIdIsInTheClientsRange()
    {
        var observability = File.ReadAllText(Path.Combine(PostgresServer.RepositoryRoot, "docs", "observability.md"));
        var used = typeof(PgNotifyClient).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .Where(a => a is not null)
            .Select(a => a!.EventId)
            .ToList();
        var declared = typeof(ClientEventIds).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (int)f.GetRawConstantValue()!).ToList();

        used.Should().OnlyHaveUniqueItems().And.BeEquivalentTo(declared, "every [LoggerMessage] takes its id from ClientEventIds");
        declared.Should().OnlyContain(id => id >= 3000 && id < 3100, "PgNotify.Client logs with ids 3000-3099");
        foreach (var id in declared)
        {
            observability.Should().Contain($"| {id} |");
        }
    }
}
