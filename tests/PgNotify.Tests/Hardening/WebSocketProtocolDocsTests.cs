using System.Reflection;
using Microsoft.Extensions.Logging;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>The docs name every protocol word and event id the WebSocket side uses, so they cannot drift apart.</summary>
public sealed class WebSocketProtocolDocsTests
{
    [Fact]
    public void ProtocolMd_NamesEveryFrameTypeErrorCodeResyncReasonUnsubscribeReasonAndCloseCode()
    {
        var protocol = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "protocol.md"));
        foreach (var type in new[] { typeof(Protocol.ErrorCodes), typeof(Protocol.ResyncReasons), typeof(Protocol.UnsubscribeReasons) })
        {
            foreach (var word in Constants<string>(type))
            {
                protocol.Should().Contain($"| `{word}` |", $"{type.Name} {word} is a protocol word");
            }
        }

        foreach (var frameType in Constants<string>(typeof(Protocol.FrameTypes)))
        {
            protocol.Should().MatchRegex($"\"type\": ?\"{frameType}\"", $"the {frameType} frame is shown in docs/protocol.md");
        }

        foreach (var code in Constants<int>(typeof(Protocol.CloseCodes)))
        {
            protocol.Should().Contain($"| {code} |");
        }
    }

    [Fact]
    public void ProtocolMd_StatesThePositionRule_WithTheBoundaryAndTheDigitsProtocolPositionsUses()
    {
        var protocol = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "protocol.md"));
        var section = protocol[protocol.IndexOf("## Positions", StringComparison.Ordinal)..];
        section = System.Text.RegularExpressions.Regex.Replace(section[..section.IndexOf("\n## ", 3, StringComparison.Ordinal)], @"\s+", " ");

        section.Should().Contain($"up to {Protocol.Positions.MaxJsonInteger} (2^53 − 1").And.Contain("a JSON integer")
            .And.Contain("a JSON string of its decimal digits, with no sign and no leading zero");
        section.Should().Contain($"a JSON string of 1 to {Protocol.Positions.MaxDigits} ASCII digits")
            .And.Contain($"at most {long.MaxValue}").And.Contain("`invalid_position`");
        foreach (var field in new[] { "a `change`'s `position`", "`subscribed`", "`snapshot_end`'s `position`" })
        {
            section.Should().Contain(field, "every frame that carries a position is named");
        }
    }

    [Fact]
    public void ObservabilityMd_ListsEveryWebSocketEventId()
    {
        var observability = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "observability.md"));
        var ids = typeof(Protocol).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .Where(a => a is not null)
            .Select(a => a!.EventId)
            .ToList();

        ids.Should().OnlyHaveUniqueItems().And.Contain([2110, 2111, 2112, 2113, 2203]);
        foreach (var id in ids)
        {
            observability.Should().Contain($"| {id} |");
        }
    }

    [Fact]
    public void WebSocketEventIds_HoldsEveryLogMessageIdAndNoOther()
    {
        var used = typeof(Protocol).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .Where(a => a is not null)
            .Select(a => a!.EventId);
        var declared = Constants<int>(typeof(WebSocketEventIds)).ToList();

        declared.Should().OnlyHaveUniqueItems().And.BeEquivalentTo(used, "every [LoggerMessage] takes its id from WebSocketEventIds");
        declared.Should().OnlyContain(id => id >= 2000 && id < 2500, "PgNotify.WebSockets logs with ids 2000-2499");
    }

    private static IEnumerable<T> Constants<T>(Type type) =>
        type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(T))
            .Select(f => (T)f.GetRawConstantValue()!);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "docs", "protocol.md")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("docs/protocol.md not found above " + AppContext.BaseDirectory);
    }
}
