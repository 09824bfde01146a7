using System.Globalization;
using System.Text;
using CsCheck;

namespace PgNotify.Tests.Properties;

/// <summary>CsCheck generators of JSON text of every shape, for the property tests.</summary>
internal static class JsonGen
{
    /// <summary>Strings PostgreSQL can hold in text and jsonb: valid UTF-16, no NUL.</summary>
    public static readonly Gen<string> ValidText = Gen.String.Select(s => new string(Sanitize(s)));

    /// <summary>Any .NET string, lone surrogates and NUL included.</summary>
    public static readonly Gen<string> AnyText = Gen.OneOf(Gen.String, Gen.Char.Array[0, 8].Select(c => new string(c)),
        Gen.OneOf("\ud800", "x\udc00", "\udfff\ud800", "\0", "😀", new string('b', 63) + "😀"));

    public static readonly Gen<string> Number = Gen.OneOf(
        Gen.Long.Select(n => n.ToString(CultureInfo.InvariantCulture)),
        Gen.Double.Where(double.IsFinite).Select(d => d.ToString("R", CultureInfo.InvariantCulture)),
        Gen.OneOf("1e400", "-1e400", "1e-400", "99999999999999999999999", "-0", "0.1e1", "9223372036854775808", "-9223372036854775809"));

    public static readonly Gen<string> Scalar = Gen.Frequency(
        (3, Number),
        (3, AnyText.Select(Literal)),
        (1, Gen.OneOf("true", "false", "null")));

    /// <summary>Any JSON value up to a few levels, with deep nesting now and then.</summary>
    public static readonly Gen<string> Value = Gen.Recursive<string>((depth, self) => depth >= 4
        ? Scalar
        : Gen.Frequency(
            (4, Scalar),
            (1, self.Array[0, 4].Select(items => "[" + string.Join(",", items) + "]")),
            (2, Gen.Select(AnyText, self).Array[0, 4].Select(Object)),
            (1, Gen.Int[1, 300].Select(Nested))));

    /// <summary>Any JSON object of values.</summary>
    public static readonly Gen<string> ObjectValue = Gen.Select(Gen.OneOf(AnyText, Gen.OneOf("name", "id", "n", "tag", "type")), Value).Array[0, 5].Select(Object);

    /// <summary>JSON text, or text that is nearly JSON (cut, or with a byte changed), or anything at all.</summary>
    public static readonly Gen<string> Text = Gen.Frequency(
        (4, Value),
        (1, Gen.Select(Value, Gen.Int[0, 1000]).Select((v, cut) => v[..Math.Min(cut, v.Length)])),
        (1, Gen.Select(Value, Gen.Int[0, 1000], Gen.Char).Select((v, at, c) => v.Length == 0 ? v : v.Remove(at % v.Length, 1).Insert(at % v.Length, c.ToString()))),
        (1, Gen.String));

    public static string Nested(int depth) => new StringBuilder(depth * 6).Insert(0, "{\"a\":", depth).Append("[1,\"x\"]").Append('}', depth).ToString();

    public static string Object((string Key, string Value)[] fields) =>
        "{" + string.Join(",", fields.Select(f => Literal(f.Key) + ":" + f.Value)) + "}";

    /// <summary>A JSON string literal; every non-ASCII or control character escaped, so lone surrogates become <c>\udXXX</c>.</summary>
    public static string Literal(string text)
    {
        var literal = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            if (c is '"' or '\\')
            {
                literal.Append('\\').Append(c);
            }
            else if (c < 0x20 || c > 0x7E)
            {
                literal.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            }
            else
            {
                literal.Append(c);
            }
        }

        return literal.Append('"').ToString();
    }

    private static char[] Sanitize(string text)
    {
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]) || chars[i] == '\0')
            {
                chars[i] = '?';
            }
        }

        return chars;
    }
}
