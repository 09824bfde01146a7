using CsCheck;
using Microsoft.AspNetCore.WebUtilities;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// The handshake's query parameters (<c>tables</c>, <c>since</c>) are read from the raw query string, so that an idle
/// socket keeps no parsed copy. For any query a client can send they read exactly as <c>Request.Query[name]</c> read
/// them: same decoding (percent escapes, <c>+</c>, invalid UTF-8), same case-insensitive names, repeated names joined
/// with commas. <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class QueryStringProperties
{
    private static readonly Gen<string> Name = Gen.OneOf("tables", "TABLES", "Tables", "since", "SINCE", "t%61bles", "tables%00", "x", "", "tables ", "tab+les");

    private static readonly Gen<string> Piece = Gen.OneOf(
        Gen.OneOf("a", "b,c", "public.items", "%2C", "%", "%zz", "%ED%A0%80", "%F0%9F%98%80", "+", "%2B", "=", "&", "?", "#", "\ud800", "é", " ", "9999999999999999999999"),
        Gen.String[Gen.Char[' ', '~'], 0, 6]);

    private static readonly Gen<string> Value = Piece.Array[0, 4].Select(p => string.Concat(p));

    private static readonly Gen<string> Query = Gen.Select(Gen.Select(Name, Gen.Bool, Value).Array[0, 6], Gen.Bool)
        .Select((pairs, mark) => (mark ? "?" : "") + string.Join("&", pairs.Select(p => p.Item2 ? p.Item1 + "=" + p.Item3 : p.Item1)));

    [Fact]
    public void QueryValue_ReadsEveryQueryAsRequestQueryDoes()
    {
        Query.Sample(query =>
        {
            var parsed = QueryHelpers.ParseNullableQuery(query);
            foreach (var name in new[] { "tables", "since" })
            {
                var expected = parsed is not null && parsed.TryGetValue(name, out var values) ? values.ToString() : "";
                Assert.Equal(expected, PgChangeWebSocketHandler.QueryValue(query, name));
            }
        }, iter: 20_000);
    }

    [Theory]
    [InlineData(null, "")]
    [InlineData("", "")]
    [InlineData("?since=5", "")]
    [InlineData("?tables=a&TABLES=b", "a,b")]
    [InlineData("?tables=a%2Cb+c", "a,b c")]
    [InlineData("?tables", "")]
    public void QueryValue_Examples(string? query, string tables) =>
        PgChangeWebSocketHandler.QueryValue(query, "tables").Should().Be(tables);
}
