using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// A subscription's row filter, compiled once: every condition must hold. INSERT is tested on the new row, DELETE on
/// the old row, UPDATE on either (so a client sees a row leave its filter); TRUNCATE always passes.
/// </summary>
internal sealed class RowFilter
{
    public const int MaxConditions = 16;

    private readonly Condition[] _conditions;

    private RowFilter(Condition[] conditions) => _conditions = conditions;

    public bool Matches(PgChange change) => change.Operation switch
    {
        PgChangeOperation.Insert => Matches(change.Data),
        PgChangeOperation.Delete => Matches(change.Old),
        PgChangeOperation.Update => Matches(change.Data) || Matches(change.Old),
        _ => true,
    };

    private bool Matches(JsonElement? row)
    {
        if (row is not { ValueKind: JsonValueKind.Object } value)
        {
            return false;
        }

        foreach (var condition in _conditions)
        {
            if (!TryGetCell(value, condition.ColumnUtf8, out var cell) || !condition.Test(cell))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The row's cell of a column; a row whose names cannot be read (an escaped lone surrogate) has none.</summary>
    private static bool TryGetCell(JsonElement row, byte[] column, out JsonElement cell)
    {
        try
        {
            return row.TryGetProperty(column, out cell);
        }
        catch (InvalidOperationException)
        {
            cell = default;
            return false;
        }
    }

    /// <summary>Compiles the <c>filter</c> object of a subscribe request, or says what is wrong with it.</summary>
    public static RowFilter? Compile(JsonElement filter, out string? error)
    {
        error = null;
        if (filter.ValueKind != JsonValueKind.Object)
        {
            error = "'filter' must be an object of column conditions.";
            return null;
        }

        var conditions = new List<Condition>();
        foreach (var property in filter.EnumerateObject())
        {
            // Names are read here, once, so that a name System.Text.Json cannot turn into a string (an escaped lone
            // surrogate) is refused with the request rather than met on the fan-out path.
            if (!TryReadName(property, out var column) || column.Length is 0 or > 63)
            {
                error = "A filter column name must be 1 to 63 characters long (and valid UTF-16).";
                return null;
            }

            if (property.Value.ValueKind == JsonValueKind.Object)
            {
                foreach (var op in property.Value.EnumerateObject())
                {
                    if (!TryReadName(op, out var opName))
                    {
                        opName = "?";
                    }

                    if (Condition.Create(column, opName, op.Value, out error) is not { } condition)
                    {
                        return null;
                    }

                    conditions.Add(condition);
                    if (conditions.Count > MaxConditions)
                    {
                        error = $"A filter may have at most {MaxConditions} conditions.";
                        return null;
                    }
                }
            }
            else if (Condition.Create(column, "eq", property.Value, out error) is { } equality)
            {
                conditions.Add(equality);
            }
            else
            {
                return null;
            }

            if (conditions.Count > MaxConditions)
            {
                error = $"A filter may have at most {MaxConditions} conditions.";
                return null;
            }
        }

        return conditions.Count == 0 ? null : new RowFilter([.. conditions]);
    }

    /// <summary>A property's name, or false when it cannot be read as a string (an escaped lone surrogate).</summary>
    private static bool TryReadName(JsonProperty property, out string name)
    {
        try
        {
            name = property.Name;
            return true;
        }
        catch (InvalidOperationException)
        {
            name = "";
            return false;
        }
    }

    /// <summary>A string value, or <see langword="null"/> when it cannot be read as one (an escaped lone surrogate).</summary>
    internal static string? TryReadString(JsonElement value)
    {
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private enum Operator
    {
        Eq,
        Neq,
        Lt,
        Lte,
        Gt,
        Gte,
        In,
    }

    /// <summary>
    /// One condition on one column. Its values were checked when it was compiled (scalars, strings that are valid
    /// UTF-16), and testing a cell never throws whatever the row holds: a cell that cannot be read or compared simply
    /// does not match (and so passes <c>neq</c>).
    /// </summary>
    private sealed class Condition
    {
        private readonly Operator _operator;
        private readonly Value[] _values;

        private Condition(string column, Operator op, Value[] values)
        {
            Column = column;
            ColumnUtf8 = System.Text.Encoding.UTF8.GetBytes(column);
            _operator = op;
            _values = values;
        }

        public string Column { get; }

        public byte[] ColumnUtf8 { get; }

        public static Condition? Create(string column, string op, JsonElement value, out string? error)
        {
            error = null;
            Operator? parsed = op switch
            {
                "eq" => Operator.Eq,
                "neq" => Operator.Neq,
                "lt" => Operator.Lt,
                "lte" => Operator.Lte,
                "gt" => Operator.Gt,
                "gte" => Operator.Gte,
                "in" => Operator.In,
                _ => null,
            };
            if (parsed is not { } kind)
            {
                error = $"Unknown filter operator '{Truncate(op)}' on column '{Truncate(column)}': use eq, neq, lt, lte, gt, gte or in.";
                return null;
            }

            if (kind == Operator.In)
            {
                if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() is 0 or > 100)
                {
                    error = $"'in' on column '{Truncate(column)}' takes an array of 1 to 100 values.";
                    return null;
                }

                var values = new List<Value>();
                foreach (var item in value.EnumerateArray())
                {
                    if (!IsScalar(item))
                    {
                        error = $"'in' on column '{Truncate(column)}' takes only numbers, strings, booleans or null.";
                        return null;
                    }

                    if (Value.Create(item) is not { } compiled)
                    {
                        error = InvalidString(column);
                        return null;
                    }

                    values.Add(compiled);
                }

                return new Condition(column, kind, [.. values]);
            }

            if (!IsScalar(value))
            {
                error = $"The filter value of column '{Truncate(column)}' must be a number, string, boolean or null.";
                return null;
            }

            if (kind is Operator.Lt or Operator.Lte or Operator.Gt or Operator.Gte && value.ValueKind is not (JsonValueKind.Number or JsonValueKind.String))
            {
                error = $"'{op}' on column '{Truncate(column)}' compares numbers or strings only.";
                return null;
            }

            if (Value.Create(value) is not { } single)
            {
                error = InvalidString(column);
                return null;
            }

            return new Condition(column, kind, [single]);
        }

        public bool Test(JsonElement cell) => _operator switch
        {
            Operator.Eq => _values[0].EqualsCell(cell),
            Operator.Neq => !_values[0].EqualsCell(cell),
            Operator.In => _values.Any(v => v.EqualsCell(cell)),
            _ => _values[0].CompareCell(cell) is { } order && _operator switch
            {
                Operator.Lt => order < 0,
                Operator.Lte => order <= 0,
                Operator.Gt => order > 0,
                _ => order >= 0,
            },
        };

        private static bool IsScalar(JsonElement value) =>
            value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null;

        private static string InvalidString(string column) =>
            $"A filter value of column '{Truncate(column)}' is not a valid string (it holds an unpaired surrogate such as \\ud800).";

        private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
    }

    /// <summary>A filter value, read once when the filter is compiled.</summary>
    private sealed class Value
    {
        private readonly JsonValueKind _kind;
        private readonly string? _text;
        private readonly byte[]? _utf8;
        private readonly decimal? _decimal;
        private readonly double? _double;
        private readonly string? _rawNumber;

        private Value(JsonValueKind kind, string? text, decimal? decimalValue, double? doubleValue, string? rawNumber)
        {
            _kind = kind;
            _text = text;
            _utf8 = text is null ? null : System.Text.Encoding.UTF8.GetBytes(text);
            _decimal = decimalValue;
            _double = doubleValue;
            _rawNumber = rawNumber;
        }

        /// <summary>The value, or <see langword="null"/> for a string that is not valid UTF-16.</summary>
        public static Value? Create(JsonElement element)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.String:
                    return TryReadString(element) is { } text ? new Value(JsonValueKind.String, text, null, null, null) : null;
                case JsonValueKind.Number:
                    return new Value(
                        JsonValueKind.Number,
                        null,
                        element.TryGetDecimal(out var d) ? d : null,
                        element.TryGetDouble(out var f) && double.IsFinite(f) ? f : null,
                        element.GetRawText());
                default:
                    return new Value(element.ValueKind, null, null, null, null);
            }
        }

        public bool EqualsCell(JsonElement cell)
        {
            if (cell.ValueKind != _kind)
            {
                return false;
            }

            return _kind switch
            {
                JsonValueKind.String => StringEquals(cell),
                JsonValueKind.Number => CompareNumber(cell) == 0,
                _ => true, // true, false, null
            };
        }

        /// <summary>The order of the cell against this value, or <see langword="null"/> when they do not compare.</summary>
        public int? CompareCell(JsonElement cell)
        {
            if (cell.ValueKind != _kind)
            {
                return null;
            }

            if (_kind == JsonValueKind.Number)
            {
                return CompareNumber(cell);
            }

            if (_kind == JsonValueKind.String && TryReadString(cell) is { } text)
            {
                return Math.Sign(string.CompareOrdinal(text, _text));
            }

            return null;
        }

        private bool StringEquals(JsonElement cell)
        {
            try
            {
                return cell.ValueEquals(_utf8);
            }
            catch (InvalidOperationException)
            {
                return false; // the cell holds an escaped lone surrogate: it equals no valid string
            }
        }

        private int? CompareNumber(JsonElement cell)
        {
            if (_decimal is { } x && cell.TryGetDecimal(out var y))
            {
                return y.CompareTo(x);
            }

            if (_double is { } f && cell.TryGetDouble(out var g) && double.IsFinite(g))
            {
                return g.CompareTo(f);
            }

            // Beyond double's range (1e400): only the same text is known to be equal.
            return string.Equals(cell.GetRawText(), _rawNumber, StringComparison.Ordinal) ? 0 : null;
        }
    }
}
