using System.Globalization;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// RowFilter for any filter a client sends and any row the database (or a forged notification) brings: compiling gives a
/// filter or an error message, and matching gives true or false, never an exception (issue 10, defect 1).
/// </summary>
public sealed class RowFilterPropertyTests
{
    /// <summary>Seeds are printed by CsCheck on failure; set CsCheck_Seed to replay one.</summary>
    private const int Iterations = 20_000;

    internal static readonly Gen<string> JsonString = Gen.OneOf<string>(
        Gen.OneOf<string>(
            "\"\"", "\"a\"", "\"b\"", "\"z\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\\ud800b\"", "\"\\ud800\\ud800\"", "\"\\udc00\\ud800\"",
            "\"\\ud83d\\ude00\"", "\"\\u0000\"", "\"\u00e9\"", "\"\\\"\"", "\"\\\\\""),
        Gen.String.Select(text => JsonSerializer.Serialize(text)),
        Gen.Char.Array[0, 6].Select(chars => "\"" + string.Concat(chars.Select(c => c < 0x20 || c == '"' || c == '\\' || char.IsSurrogate(c) ? $"\\u{(int)c:x4}" : c.ToString())) + "\""));

    internal static readonly Gen<string> JsonNumber = Gen.OneOf<string>(
        Gen.OneOf("0", "-0", "1", "-1", "1.5", "1e400", "-1e400", "1e-400", "79228162514264337593543950336", "123456789012345678901234567890.5",
            "9223372036854775807", "-9223372036854775809", "4.9e-324", "1.7976931348623157e308"),
        Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", CultureInfo.InvariantCulture)));

    internal static readonly Gen<string> JsonScalar = Gen.OneOf<string>(JsonString, JsonNumber, Gen.OneOf("true", "false", "null"));

    internal static readonly Gen<string> Key = Gen.OneOf<string>(
        Gen.OneOf("name", "id", "eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "", "\\ud800", "na\\u006de").Select(k => "\"" + k + "\""),
        JsonString);

    internal static Gen<string> Json(int depth) => depth == 0
        ? JsonScalar
        : Gen.Frequency<string>(
            (4, JsonScalar),
            (1, Json(depth - 1).Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(Key, Json(depth - 1)).Array[0, 4].Select(Object)));

    private static string Object((string Key, string Value)[] members) => "{" + string.Join(",", members.Select(m => m.Key + ":" + m.Value)) + "}";

    /// <summary>Filters shaped like real ones most of the time, and anything at all some of the time.</summary>
    private static readonly Gen<string> Filter = Gen.Frequency<string>(
        (6, Gen.Select(Key, Gen.Frequency<string>(
                (3, JsonScalar),
                (3, Gen.Select(Key, Gen.Frequency<string>((3, JsonScalar), (1, JsonScalar.Array[0, 5].Select(v => "[" + string.Join(",", v) + "]")), (1, Json(2)))).Array[1, 3].Select(Object)),
                (1, Json(2))))
            .Array[0, 4].Select(Object)),
        (1, Json(3)));

    private static readonly Gen<string> Row = Gen.Frequency<string>(
        (6, Gen.Select(Key, Json(2)).Array[0, 5].Select(Object)),
        (1, Json(2)));

    [Fact]
    public void Compile_AnyFilter_GivesAFilterOrAnError_AndMatchingAnyRowNeverThrows()
    {
        Gen.Select(Filter, Row, Row).Sample((filterText, newText, oldText) =>
        {
            using var filterJson = JsonDocument.Parse(filterText);
            using var newRow = JsonDocument.Parse(newText);
            using var oldRow = JsonDocument.Parse(oldText);

            var filter = RowFilter.Compile(filterJson.RootElement, out var error);
            if (filter is null)
            {
                // No filter and no error: only for filters without any condition ({} or {"name":{}}).
                if (error is null)
                {
                    IsEmptyObject(filterJson.RootElement).Should().BeTrue(filterText);
                }

                return;
            }

            error.Should().BeNull();
            foreach (var operation in Enum.GetValues<PgChangeOperation>())
            {
                var change = new PgChange(new PgTableName("public", "t"), operation, newRow.RootElement, oldRow.RootElement, 1, 1, null, null, DateTimeOffset.UnixEpoch);
                _ = filter.Matches(change); // must not throw
            }
        }, iter: Iterations);
    }

    [Fact]
    public void Compile_StringWithLoneSurrogate_IsRefusedWithAnError()
    {
        foreach (var text in new[] { "{\"name\":\"\\ud800\"}", "{\"name\":{\"in\":[1,\"\\udc00\"]}}", "{\"name\":{\"lt\":\"x\\ud800\"}}", "{\"\\ud800\":1}" })
        {
            using var json = JsonDocument.Parse(text);
            RowFilter.Compile(json.RootElement, out var error).Should().BeNull(text);
            error.Should().NotBeNullOrWhiteSpace(text);
        }
    }

    [Fact]
    public void Matches_RowWithLoneSurrogate_DoesNotMatchAndDoesNotThrow()
    {
        using var filterJson = JsonDocument.Parse("{\"name\":{\"lt\":\"z\"},\"tag\":\"a\",\"n\":{\"in\":[1,\"a\",null]}}");
        var filter = RowFilter.Compile(filterJson.RootElement, out var error)!;
        error.Should().BeNull();
        using var row = JsonDocument.Parse("{\"name\":\"\\ud800\",\"tag\":\"\\udc00\",\"n\":\"\\ud800\"}");
        filter.Matches(new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, row.RootElement, null, 1, 1, null, null, DateTimeOffset.UnixEpoch))
            .Should().BeFalse();
    }

    [Theory]
    [InlineData("{\"n\":{\"gt\":1e400}}", "{\"n\":1}", false)]
    [InlineData("{\"n\":1e400}", "{\"n\":1e400}", true)]
    [InlineData("{\"n\":{\"lt\":2}}", "{\"n\":1e-400}", true)]
    [InlineData("{\"n\":{\"gte\":79228162514264337593543950336}}", "{\"n\":79228162514264337593543950337}", true)]
    [InlineData("{\"name\":\"\\u00e9\"}", "{\"name\":\"\u00e9\"}", true)]
    [InlineData("{\"name\":{\"neq\":\"a\"}}", "{\"name\":\"\\ud800\"}", true)]
    [InlineData("{\"name\":{\"lt\":\"b\"}}", "{\"name\":\"a\"}", true)]
    [InlineData("{\"name\":{\"lt\":\"b\"}}", "{\"name\":\"c\"}", false)]
    public void Matches_EdgeValues_CompareAsDocumented(string filterText, string rowText, bool expected)
    {
        using var filterJson = JsonDocument.Parse(filterText);
        var filter = RowFilter.Compile(filterJson.RootElement, out var error);
        error.Should().BeNull();
        using var row = JsonDocument.Parse(rowText);
        filter!.Matches(new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, row.RootElement, null, 1, 1, null, null, DateTimeOffset.UnixEpoch))
            .Should().Be(expected);
    }

    private static bool IsEmptyObject(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        foreach (var property in element.EnumerateObject())
        {
            // An object of operators with no operator at all ("name": {}) adds no condition either.
            if (property.Value.ValueKind != JsonValueKind.Object || property.Value.EnumerateObject().Any())
            {
                return false;
            }
        }

        return true;
    }
}
