using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

internal enum RowFilterOperator
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
internal sealed class RowFilterCondition
{
    private readonly RowFilterOperator _operator;
    private readonly RowFilterValue[] _values;

    private RowFilterCondition(string column, RowFilterOperator op, RowFilterValue[] values)
    {
        Column = column;
        ColumnUtf8 = System.Text.Encoding.UTF8.GetBytes(column);
        _operator = op;
        _values = values;
    }

    public string Column { get; }

    public byte[] ColumnUtf8 { get; }

    public static RowFilterCondition? Create(string column, string op, JsonElement value, out string? error)
    {
        error = null;
        RowFilterOperator? parsed = op switch
        {
            "eq" => RowFilterOperator.Eq,
            "neq" => RowFilterOperator.Neq,
            "lt" => RowFilterOperator.Lt,
            "lte" => RowFilterOperator.Lte,
            "gt" => RowFilterOperator.Gt,
            "gte" => RowFilterOperator.Gte,
            "in" => RowFilterOperator.In,
            _ => null,
        };
        if (parsed is not { } kind)
        {
            error = $"Unknown filter operator '{Truncate(op)}' on column '{Truncate(column)}': use eq, neq, lt, lte, gt, gte or in.";
            return null;
        }

        if (kind == RowFilterOperator.In)
        {
            if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() is 0 or > 100)
            {
                error = $"'in' on column '{Truncate(column)}' takes an array of 1 to 100 values.";
                return null;
            }

            var values = new List<RowFilterValue>();
            foreach (var item in value.EnumerateArray())
            {
                if (!IsScalar(item))
                {
                    error = $"'in' on column '{Truncate(column)}' takes only numbers, strings, booleans or null.";
                    return null;
                }

                if (RowFilterValue.Create(item) is not { } compiled)
                {
                    error = InvalidString(column);
                    return null;
                }

                values.Add(compiled);
            }

            return new RowFilterCondition(column, kind, [.. values]);
        }

        if (!IsScalar(value))
        {
            error = $"The filter value of column '{Truncate(column)}' must be a number, string, boolean or null.";
            return null;
        }

        if (kind is RowFilterOperator.Lt or RowFilterOperator.Lte or RowFilterOperator.Gt or RowFilterOperator.Gte && value.ValueKind is not (JsonValueKind.Number or JsonValueKind.String))
        {
            error = $"'{op}' on column '{Truncate(column)}' compares numbers or strings only.";
            return null;
        }

        if (RowFilterValue.Create(value) is not { } single)
        {
            error = InvalidString(column);
            return null;
        }

        return new RowFilterCondition(column, kind, [single]);
    }

    public bool Test(JsonElement cell) => _operator switch
    {
        RowFilterOperator.Eq => _values[0].EqualsCell(cell),
        RowFilterOperator.Neq => !_values[0].EqualsCell(cell),
        RowFilterOperator.In => _values.Any(v => v.EqualsCell(cell)),
        _ => _values[0].CompareCell(cell) is { } order && _operator switch
        {
            RowFilterOperator.Lt => order < 0,
            RowFilterOperator.Lte => order <= 0,
            RowFilterOperator.Gt => order > 0,
            _ => order >= 0,
        },
    };

    /// <summary>The same condition for Core's snapshot reader, which evaluates it in SQL.</summary>
    public PgRowCondition ToRowCondition() => new(
        Column,
        _operator switch
        {
            RowFilterOperator.Eq => PgRowConditionOperator.Eq,
            RowFilterOperator.Neq => PgRowConditionOperator.Neq,
            RowFilterOperator.Lt => PgRowConditionOperator.Lt,
            RowFilterOperator.Lte => PgRowConditionOperator.Lte,
            RowFilterOperator.Gt => PgRowConditionOperator.Gt,
            RowFilterOperator.Gte => PgRowConditionOperator.Gte,
            _ => PgRowConditionOperator.In,
        },
        [.. _values.Select(v => v.Json)]);

    private static bool IsScalar(JsonElement value) =>
        value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null;

    private static string InvalidString(string column) =>
        $"A filter value of column '{Truncate(column)}' is not a valid string (it holds an unpaired surrogate such as \\ud800).";

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
