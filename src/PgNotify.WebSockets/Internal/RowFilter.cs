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
            if (!value.TryGetProperty(condition.Column, out var cell) || !condition.Test(cell))
            {
                return false;
            }
        }

        return true;
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
            if (property.Name.Length is 0 or > 63)
            {
                error = "A filter column name must be 1 to 63 characters long.";
                return null;
            }

            if (property.Value.ValueKind == JsonValueKind.Object)
            {
                foreach (var op in property.Value.EnumerateObject())
                {
                    if (Condition.Create(property.Name, op.Name, op.Value, out error) is not { } condition)
                    {
                        return null;
                    }

                    conditions.Add(condition);
                }
            }
            else if (Condition.Create(property.Name, "eq", property.Value, out error) is { } equality)
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

    private sealed class Condition
    {
        private readonly Operator _operator;
        private readonly JsonElement[] _values;

        private Condition(string column, Operator op, JsonElement[] values)
        {
            Column = column;
            _operator = op;
            _values = values;
        }

        public string Column { get; }

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

                var values = value.EnumerateArray().Select(v => v.Clone()).ToArray();
                if (values.Any(v => !IsScalar(v)))
                {
                    error = $"'in' on column '{Truncate(column)}' takes only numbers, strings, booleans or null.";
                    return null;
                }

                return new Condition(column, kind, values);
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

            return new Condition(column, kind, [value.Clone()]);
        }

        public bool Test(JsonElement cell) => _operator switch
        {
            Operator.Eq => JsonEquals(cell, _values[0]),
            Operator.Neq => !JsonEquals(cell, _values[0]),
            Operator.In => _values.Any(v => JsonEquals(cell, v)),
            _ => Compare(cell, _values[0]) is { } order && _operator switch
            {
                Operator.Lt => order < 0,
                Operator.Lte => order <= 0,
                Operator.Gt => order > 0,
                _ => order >= 0,
            },
        };

        private static bool IsScalar(JsonElement value) =>
            value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null;

        private static bool JsonEquals(JsonElement a, JsonElement b) => (a.ValueKind, b.ValueKind) switch
        {
            (JsonValueKind.Number, JsonValueKind.Number) => Compare(a, b) == 0,
            (JsonValueKind.String, JsonValueKind.String) => a.ValueEquals(b.GetString()),
            (JsonValueKind.True, JsonValueKind.True) or (JsonValueKind.False, JsonValueKind.False) or (JsonValueKind.Null, JsonValueKind.Null) => true,
            _ => false,
        };

        private static int? Compare(JsonElement a, JsonElement b)
        {
            if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number)
            {
                if (a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y))
                {
                    return x.CompareTo(y);
                }

                return a.GetDouble().CompareTo(b.GetDouble());
            }

            if (a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String)
            {
                return string.CompareOrdinal(a.GetString(), b.GetString());
            }

            return null;
        }

        private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
    }
}
