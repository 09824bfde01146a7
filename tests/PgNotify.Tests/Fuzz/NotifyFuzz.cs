using System.Globalization;
using System.Text;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// Generated and mutated <c>NOTIFY</c> payloads for the listener's channel, shaped like the trigger's three payloads
/// (a whole change, a <c>ref</c> to a parked large one, a lossless <c>wake</c>) and like nothing at all. Every payload
/// is one PostgreSQL accepts: under 8000 bytes, no NUL, valid UTF-8 (a lone surrogate only as a JSON escape).
/// </summary>
public sealed class NotifyFuzz(int seed, string table)
{
    public const int MaxPayloadBytes = 7_999;

    private readonly JsonFuzz _json = new(seed);

    public JsonFuzz Json => _json;

    /// <summary>The next payload. <paramref name="knownRef"/> is a real <c>large_payload</c> id, if one exists.</summary>
    public string Next(long? knownRef)
    {
        var payload = _json.Next(10) switch
        {
            < 4 => Change(),
            4 => Ref(knownRef),
            5 => "{\"v\":" + Version() + ",\"wake\":" + _json.WrongOr(_json.Number()) + "}",
            6 => _json.MutateText(Change()),
            7 => _json.Chance(0.5) ? _json.Nested(_json.Next(10) == 0 ? _json.Next(1_000, 3_900) : _json.Depth() % 3_900) : _json.Any(5),
            8 => _json.MutateText(Ref(knownRef)),
            _ => NotJson(),
        };
        return Fit(payload);
    }

    /// <summary>A change shaped like the trigger's, with any field forged: names, op, numbers, rows.</summary>
    public string Change()
    {
        var fields = new List<string>
        {
            "\"v\":" + Version(),
            "\"schema\":" + Name("public"),
            "\"table\":" + Name(table),
            "\"op\":" + _json.WrongOr("\"" + _json.Pick(new[] { "INSERT", "UPDATE", "DELETE", "TRUNCATE", "insert", "MERGE", "" }) + "\""),
            "\"xid\":" + _json.WrongOr(_json.Number()),
            "\"seq\":" + _json.WrongOr(_json.Number()),
            "\"ts\":" + _json.WrongOr("\"" + DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture) + "\""),
            "\"data\":" + Row(),
            "\"old\":" + (_json.Chance(0.5) ? "null" : Row()),
        };
        if (_json.Chance(0.2))
        {
            fields.Add("\"pos\":" + _json.Number());
        }

        if (_json.Chance(0.2))
        {
            fields.Add($"\"extra{_json.Next(10)}\":{_json.Any(2)}");
        }

        for (var drop = _json.Chance(0.2) ? _json.Next(1, 3) : 0; drop > 0 && fields.Count > 1; drop--)
        {
            fields.RemoveAt(_json.Next(fields.Count));
        }

        return "{" + string.Join(",", fields) + "}";
    }

    /// <summary>A large-payload reference: -1, 0, a real id, a huge one, or not a number.</summary>
    public string Ref(long? knownRef)
    {
        var reference = _json.Next(8) switch
        {
            0 => "-1",
            1 => "0",
            2 or 3 when knownRef is { } real => real.ToString(CultureInfo.InvariantCulture),
            4 => "9223372036854775807",
            5 => "1e400",
            _ => _json.WrongOr(_json.Number()),
        };
        return "{\"v\":" + Version() + ",\"schema\":" + Name("public") + ",\"table\":" + Name(table) + ",\"op\":\"INSERT\",\"xid\":1,\"seq\":1,\"ref\":" + reference + "}";
    }

    private string Version() => _json.Next(10) switch
    {
        < 7 => "1",
        7 => "1.0",
        8 => "2",
        _ => _json.Scalar(),
    };

    /// <summary>A schema or table name: the real one, empty, 200 characters, lone surrogates, or the wrong type.</summary>
    private string Name(string real) => _json.Next(10) switch
    {
        < 5 => "\"" + real + "\"",
        5 => "\"\"",
        6 => "\"" + new string('n', _json.Pick(new[] { 63, 64, 200 })) + "\"",
        7 => "\"" + real + "\\ud800\"",
        8 => _json.StringLiteral(),
        _ => _json.Any(1),
    };

    /// <summary>A row: an object with the table's columns or anything, lone surrogates, huge numbers, deep jsonb.</summary>
    private string Row()
    {
        if (_json.Chance(0.15))
        {
            return _json.Any(3);
        }

        var columns = new List<string>
        {
            "\"id\":" + _json.Number(),
            "\"name\":" + _json.StringLiteral(),
            "\"n\":" + _json.WrongOr(_json.Number()),
            "\"tag\":" + _json.StringLiteral(),
        };
        if (_json.Chance(0.3))
        {
            columns.Add("\"doc\":" + _json.Nested(_json.Depth() % 2_000));
        }

        return "{" + string.Join(",", columns) + "}";
    }

    private string NotJson() => _json.Next(5) switch
    {
        0 => "",
        1 => "not json",
        2 => "{\"v\":1,",
        3 => new string('x', _json.Next(7_990)),
        _ => "[" + string.Join(",", Enumerable.Repeat("{\"v\":1}", _json.Next(1, 50))) + "]",
    };

    /// <summary>Cuts a payload to what pg_notify accepts, keeping it valid text.</summary>
    private static string Fit(string payload)
    {
        payload = JsonFuzz.Sanitize(payload);
        while (Encoding.UTF8.GetByteCount(payload) > MaxPayloadBytes)
        {
            payload = JsonFuzz.Sanitize(payload[..(payload.Length * 3 / 4)]);
        }

        return payload;
    }
}
