using System.Globalization;
using System.Text;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// A seeded generator of hostile JSON text: every shape, wrong types, lone surrogate escapes, huge numbers, deep
/// nesting, huge strings, unknown fields, and mutations of valid text. The same seed gives the same sequence.
/// </summary>
public sealed class JsonFuzz(int seed)
{
    private static readonly string[] Numbers =
    [
        "0", "-0", "1", "-1", "1.5", "1e400", "-1e400", "1e-400", "99999999999999999999999", "-9223372036854775809",
        "9223372036854775807", "9223372036854775808", "2147483648", "0.1e1", "1E+2", "123456789012345678901234567890.5",
        "4.9e-324", "1.7976931348623157e309",
    ];

    private static readonly string[] Strings =
    [
        "", "a", "alice", "bob", "\\ud800", "\\udc00", "x\\ud800y", "\\udfff\\ud800", "\\ud83d\\ude00", "😀", "é", "\\u0000",
        "\\n\\t\\\"\\\\", "' OR 1=1 --", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "subscribe", "ping", "public", "pgnotify",
        "pg_catalog.pg_authid", "pgnotify.large_payload", "a.b.c", "\\\"quoted\\\"", "\\u00e9", "\\uFFFF", "\\uFEFF",
        "2026-12-01T03:29:33.009+00:00", "not a date",
    ];

    private static readonly string[] Fields =
    [
        "type", "id", "tables", "operations", "filter", "since", "v", "schema", "table", "op", "xid", "seq", "ts",
        "data", "old", "ref", "wake", "pos", "name", "n", "doc", "tag", "eq", "neq", "lt", "lte", "gt", "gte", "in",
        "__proto__", "", "\\ud800", "😀", "constructor",
    ];

    public Random Random { get; } = new(seed);

    public int Next(int max) => Random.Next(max);

    public int Next(int min, int max) => Random.Next(min, max);

    public bool Chance(double p) => Random.NextDouble() < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Random.Next(items.Count)];

    /// <summary>A JSON number: ordinary, huge, tiny, or out of every .NET integer range.</summary>
    public string Number() => Chance(0.6) ? Pick(Numbers) : (Random.NextDouble() * Math.Pow(10, Random.Next(-5, 30)) * (Chance(0.5) ? -1 : 1)).ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A JSON string literal (with its quotes), possibly with escapes that decode to lone surrogates.</summary>
    public string StringLiteral(int maxLength = 300)
    {
        switch (Random.Next(8))
        {
            case 0:
                return "\"" + new string((char)('a' + Random.Next(26)), Random.Next(Math.Min(maxLength, 20_000) + 1)) + "\"";
            case 1:
                // The 63/64/128/200-character boundaries, with a surrogate pair straddling them.
                var boundary = Pick(new[] { 62, 63, 64, 127, 128, 199, 200, 201 });
                return "\"" + new string('b', boundary) + (Chance(0.5) ? "😀" : "\\ud83d\\ude00") + "\"";
            case 2:
                var text = new StringBuilder("\"");
                for (var i = Random.Next(1, 8); i > 0; i--)
                {
                    text.Append(Pick(Strings));
                }

                return text.Append('"').ToString();
            default:
                return "\"" + Pick(Strings) + "\"";
        }
    }

    public string Scalar() => Random.Next(6) switch
    {
        0 or 1 => Number(),
        2 or 3 => StringLiteral(),
        4 => Chance(0.5) ? "true" : "false",
        _ => "null",
    };

    /// <summary>Arrays and objects nested <paramref name="depth"/> levels deep around a scalar.</summary>
    public string Nested(int depth)
    {
        var open = new StringBuilder(depth * 6);
        var close = new StringBuilder(depth * 2);
        for (var i = 0; i < depth; i++)
        {
            if (Chance(0.5))
            {
                open.Append('[');
                close.Insert(0, ']');
            }
            else
            {
                open.Append("{\"a\":");
                close.Insert(0, '}');
            }
        }

        return open + Scalar() + close;
    }

    /// <summary>A depth for nesting: mostly shallow, sometimes past every parser's default limit, up to 10,000.</summary>
    public int Depth() => Random.Next(4) switch
    {
        0 => Random.Next(10, 70),
        1 => Random.Next(60, 130),
        2 => Random.Next(130, 1_100),
        _ => Random.Next(1_000, 10_001),
    };

    /// <summary>Any JSON value of at most <paramref name="budget"/> levels.</summary>
    public string Any(int budget = 4)
    {
        if (budget <= 0)
        {
            return Scalar();
        }

        switch (Random.Next(10))
        {
            case 0 or 1:
                return "[" + string.Join(",", Enumerable.Range(0, Random.Next(5)).Select(_ => Any(budget - 1))) + "]";
            case 2 or 3:
                return Object(budget - 1);
            case 4:
                return Nested(Chance(0.8) ? Random.Next(1, 12) : Random.Next(12, 40));
            default:
                return Scalar();
        }
    }

    public string Object(int budget = 3, int maxFields = 5) =>
        "{" + string.Join(",", Enumerable.Range(0, Random.Next(maxFields + 1)).Select(_ => $"\"{Pick(Fields)}\":{Any(budget)}")) + "}";

    /// <summary>A value meant for <paramref name="field"/>: mostly the right type, often the wrong one.</summary>
    public string WrongOr(string right) => Random.Next(4) == 0 ? Any(2) : right;

    /// <summary>A filter object: real columns, every operator, any operand (lone surrogates and huge numbers included).</summary>
    public string Filter()
    {
        if (Chance(0.1))
        {
            return Any(3);
        }

        var conditions = new List<string>();
        for (var i = Chance(0.6) ? 1 : Random.Next(2, 4); i > 0; i--)
        {
            var column = Chance(0.8) ? Pick(new[] { "name", "n", "id", "doc", "tag" }) : Pick(Fields);
            var value = Random.Next(6) switch
            {
                0 => Scalar(),
                5 => Chance(0.5) ? "\"\\ud800\"" : "{\"" + Pick(new[] { "eq", "neq", "lt", "gte", "in" }) + "\":" + (Chance(0.5) ? "\"x\\udc00\"" : "[\"\\ud800\"]") + "}",
                1 => "{\"in\":[" + string.Join(",", Enumerable.Range(0, Random.Next(0, 5)).Select(_ => Scalar())) + "]}",
                2 => "{\"" + Pick(new[] { "eq", "neq", "lt", "lte", "gt", "gte", "like" }) + "\":" + Scalar() + "}",
                3 => "{\"" + Pick(new[] { "lt", "gt" }) + "\":" + Scalar() + ",\"" + Pick(new[] { "lte", "gte", "neq" }) + "\":" + Scalar() + "}",
                _ => Any(2),
            };
            conditions.Add($"\"{column}\":{value}");
        }

        return "{" + string.Join(",", conditions) + "}";
    }

    /// <summary>A client request: subscribe, unsubscribe, ping or another type, with right and wrong field types.</summary>
    public string Request(string table)
    {
        var fields = new List<string>();
        var type = Random.Next(10) switch
        {
            < 5 => "\"subscribe\"",
            5 or 6 => "\"unsubscribe\"",
            7 => "\"ping\"",
            8 => StringLiteral(),
            _ => Any(1),
        };
        fields.Add("\"type\":" + type);
        if (Chance(0.7))
        {
            fields.Add("\"id\":" + WrongOr(Chance(0.5) ? Random.Next().ToString(CultureInfo.InvariantCulture) : StringLiteral(140)));
        }

        if (Chance(0.85))
        {
            var names = Enumerable.Range(0, Chance(0.05) ? Random.Next(90, 120) : Random.Next(0, 4))
                .Select(_ => Random.Next(4) switch
                {
                    0 or 1 => "\"" + table + "\"",
                    2 => "\"public." + table + "\"",
                    _ => Chance(0.5) ? StringLiteral(260) : Any(1),
                });
            fields.Add("\"tables\":" + WrongOr("[" + string.Join(",", names) + "]"));
        }

        if (Chance(0.3))
        {
            fields.Add("\"operations\":" + WrongOr("[" + string.Join(",", Enumerable.Range(0, Random.Next(0, 5)).Select(_ => "\"" + Pick(new[] { "INSERT", "UPDATE", "DELETE", "TRUNCATE", "MERGE", "insert" }) + "\"")) + "]"));
        }

        if (Chance(0.5))
        {
            fields.Add("\"filter\":" + Filter());
        }

        if (Chance(0.1))
        {
            fields.Add("\"since\":" + WrongOr(Number()));
        }

        for (var i = Chance(0.3) ? Random.Next(1, 4) : 0; i > 0; i--)
        {
            fields.Add($"\"{Pick(Fields)}{Random.Next(100)}\":{Any(2)}"); // unknown fields
        }

        if (Chance(0.05))
        {
            fields.Add(fields[Random.Next(fields.Count)]); // a duplicated property
        }

        Shuffle(fields);
        return "{" + string.Join(",", fields) + "}";
    }

    /// <summary>Mutates UTF-8 bytes: byte flips, truncation, duplication of a slice, insertion, deletion.</summary>
    public byte[] Mutate(byte[] input)
    {
        var bytes = new List<byte>(input);
        for (var round = Random.Next(1, 4); round > 0; round--)
        {
            if (bytes.Count == 0)
            {
                bytes.Add((byte)Random.Next(256));
                continue;
            }

            var at = Random.Next(bytes.Count);
            switch (Random.Next(6))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << Random.Next(8));
                    break;
                case 1:
                    bytes.RemoveRange(at, bytes.Count - at); // truncation
                    break;
                case 2:
                    var length = Math.Min(bytes.Count - at, Random.Next(1, 64));
                    bytes.InsertRange(at, bytes.GetRange(at, length)); // duplication
                    break;
                case 3:
                    bytes.Insert(at, Pick(new byte[] { (byte)'{', (byte)'}', (byte)'[', (byte)']', (byte)'"', (byte)'\\', (byte)',', (byte)':', 0, 0xC3, 0xFF, 0xED, 0xA0, 0x80 }));
                    break;
                case 4:
                    bytes.RemoveRange(at, Math.Min(bytes.Count - at, Random.Next(1, 8)));
                    break;
                default:
                    bytes[at] = (byte)Random.Next(256);
                    break;
            }
        }

        return [.. bytes];
    }

    /// <summary>Mutates text at the character level, keeping it valid UTF-16 (for payloads that must be valid text).</summary>
    public string MutateText(string input)
    {
        var mutated = Encoding.UTF8.GetString(Mutate(Encoding.UTF8.GetBytes(input)));
        return Sanitize(mutated);
    }

    /// <summary>Text PostgreSQL accepts: no NUL, no lone surrogate (invalid UTF-8 decodes to U+FFFD already).</summary>
    public static string Sanitize(string text)
    {
        var chars = text.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (chars[i] == '\0')
            {
                chars[i] = ' ';
            }
            else if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '?';
            }
        }

        return new string(chars);
    }

    /// <summary>Bytes that are not valid UTF-8, somewhere inside otherwise valid-looking JSON.</summary>
    public byte[] InvalidUtf8()
    {
        var bad = Pick(new byte[][] { [0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xC0, 0xAF], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80] });
        var text = Encoding.UTF8.GetBytes("{\"type\":\"ping\",\"id\":\"");
        return [.. text, .. bad, .. "\"}"u8];
    }

    private void Shuffle<T>(List<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = Random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
