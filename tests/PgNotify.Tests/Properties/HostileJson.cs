using System.Globalization;
using System.Text.Json;
using CsCheck;

namespace PgNotify.Tests.Properties;

/// <summary>
/// CsCheck generators of JSON text as a hostile client or a forged notification writes it: escaped lone surrogates,
/// NUL, numbers past every range (1e400), keys that are operator names. Used by the request, filter and frame properties.
/// </summary>
internal static class HostileJson
{
    public static readonly Gen<string> String = Gen.OneOf<string>(
        Gen.OneOf<string>(
            "\"\"", "\"a\"", "\"b\"", "\"z\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\\ud800b\"", "\"\\ud800\\ud800\"", "\"\\udc00\\ud800\"",
            "\"\\ud83d\\ude00\"", "\"\\u0000\"", "\"\u00e9\"", "\"\\\"\"", "\"\\\\\""),
        Gen.String.Select(text => JsonSerializer.Serialize(text)),
        Gen.Char.Array[0, 6].Select(chars => "\"" + string.Concat(chars.Select(c => c < 0x20 || c == '"' || c == '\\' || char.IsSurrogate(c) ? $"\\u{(int)c:x4}" : c.ToString())) + "\""));

    public static readonly Gen<string> Number = Gen.OneOf<string>(
        Gen.OneOf("0", "-0", "1", "-1", "1.5", "1e400", "-1e400", "1e-400", "79228162514264337593543950336", "123456789012345678901234567890.5",
            "9223372036854775807", "-9223372036854775809", "4.9e-324", "1.7976931348623157e308"),
        Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", CultureInfo.InvariantCulture)));

    public static readonly Gen<string> Scalar = Gen.OneOf<string>(String, Number, Gen.OneOf("true", "false", "null"));

    public static readonly Gen<string> Key = Gen.OneOf<string>(
        Gen.OneOf("name", "id", "eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "", "\\ud800", "na\\u006de").Select(k => "\"" + k + "\""),
        String);

    public static Gen<string> Value(int depth) => depth == 0
        ? Scalar
        : Gen.Frequency<string>(
            (4, Scalar),
            (1, Value(depth - 1).Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.Select(Key, Value(depth - 1)).Array[0, 4].Select(Object)));

    /// <summary>An object of members whose keys are already JSON literals.</summary>
    public static string Object((string Key, string Value)[] members) => "{" + string.Join(",", members.Select(m => m.Key + ":" + m.Value)) + "}";
}
