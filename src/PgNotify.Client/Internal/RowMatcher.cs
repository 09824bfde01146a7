using System.Text.Json;
using System.Text.Json.Nodes;

namespace PgNotify.Client.Internal;

/// <summary>
/// The subscription's filter, evaluated on the client the way the server does (docs/protocol.md, "filter"), so that
/// live rows can drop a row an UPDATE moved out of the filter. A cell that cannot be read or compared does not match.
/// </summary>
internal sealed class RowMatcher
{
    private readonly List<(string Column, string Op, JsonElement[] Values)> _conditions = [];

    private RowMatcher()
    {
    }

    public static RowMatcher Create(JsonObject? filter)
    {
        var matcher = new RowMatcher();
        if (filter is null)
        {
            return matcher;
        }

        var element = JsonSerializer.SerializeToElement(filter, ClientJsonContext.Default.JsonObject);
        foreach (var property in element.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.Object)
            {
                foreach (var op in property.Value.EnumerateObject())
                {
                    matcher._conditions.Add((property.Name, op.Name, op.Name == "in" && op.Value.ValueKind == JsonValueKind.Array ? [.. op.Value.EnumerateArray()] : [op.Value]));
                }
            }
            else
            {
                matcher._conditions.Add((property.Name, "eq", [property.Value]));
            }
        }

        return matcher;
    }

    public bool Matches(JsonElement row)
    {
        if (row.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        foreach (var (column, op, values) in _conditions)
        {
            JsonElement cell;
            try
            {
                if (!row.TryGetProperty(column, out cell))
                {
                    return false;
                }
            }
            catch (InvalidOperationException)
            {
                return false;
            }

            var pass = op switch
            {
                "eq" => AreEqual(values[0], cell),
                "neq" => !AreEqual(values[0], cell),
                "in" => values.Any(v => AreEqual(v, cell)),
                "lt" => Compare(cell, values[0]) is < 0,
                "lte" => Compare(cell, values[0]) is <= 0,
                "gt" => Compare(cell, values[0]) is > 0,
                "gte" => Compare(cell, values[0]) is >= 0,
                _ => false,
            };
            if (!pass)
            {
                return false;
            }
        }

        return true;
    }

    private static bool AreEqual(JsonElement value, JsonElement cell) =>
        value.ValueKind == cell.ValueKind && (value.ValueKind is not (JsonValueKind.Number or JsonValueKind.String) || Compare(cell, value) == 0);

    /// <summary>The order of a cell against a value of the same kind (numbers, strings), or null.</summary>
    private static int? Compare(JsonElement cell, JsonElement value)
    {
        if (cell.ValueKind != value.ValueKind)
        {
            return null;
        }

        try
        {
            if (cell.ValueKind == JsonValueKind.String)
            {
                return Math.Sign(string.CompareOrdinal(cell.GetString(), value.GetString()));
            }

            if (cell.ValueKind == JsonValueKind.Number)
            {
                if (cell.TryGetDecimal(out var a) && value.TryGetDecimal(out var b))
                {
                    return a.CompareTo(b);
                }

                if (cell.TryGetDouble(out var f) && value.TryGetDouble(out var g) && double.IsFinite(f) && double.IsFinite(g))
                {
                    return f.CompareTo(g);
                }

                return cell.GetRawText() == value.GetRawText() ? 0 : null;
            }
        }
        catch (InvalidOperationException)
        {
            // An escaped lone surrogate: no valid string equals it.
        }

        return null;
    }
}
