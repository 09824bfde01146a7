using System.Text.Json;

namespace PgNotify;

/// <summary>
/// One condition on a row's JSON (the row as change frames carry it), for reading a snapshot of a table
/// (<see cref="PgTableSnapshot.ReadRowsAsync"/>): the column's value compared with scalar JSON values. The snapshot
/// evaluates it in SQL with parameters; the value never becomes SQL text.
/// </summary>
public sealed class PgRowCondition
{
    /// <summary>The most values an <see cref="PgRowConditionOperator.In"/> condition may hold.</summary>
    public const int MaxValues = 100;

    /// <summary>Creates a condition.</summary>
    /// <param name="column">The column (a key of the row's JSON), 1 to 63 characters.</param>
    /// <param name="operator">The comparison.</param>
    /// <param name="values">
    /// The values: numbers, strings, booleans or null; exactly one unless <paramref name="operator"/> is
    /// <see cref="PgRowConditionOperator.In"/> (1 to <see cref="MaxValues"/>). The ordering operators take a number or a
    /// string.
    /// </param>
    /// <exception cref="ArgumentException">The column or the values break these rules.</exception>
    public PgRowCondition(string column, PgRowConditionOperator @operator, IReadOnlyList<JsonElement> values)
    {
        ArgumentNullException.ThrowIfNull(column);
        ArgumentNullException.ThrowIfNull(values);
        if (column.Length is 0 or > 63)
        {
            throw new ArgumentException("A condition's column must be 1 to 63 characters long.", nameof(column));
        }

        if (!Enum.IsDefined(@operator))
        {
            throw new ArgumentOutOfRangeException(nameof(@operator));
        }

        var expected = @operator == PgRowConditionOperator.In ? (1, MaxValues) : (1, 1);
        if (values.Count < expected.Item1 || values.Count > expected.Item2)
        {
            throw new ArgumentException($"'{@operator}' takes {(expected.Item2 == 1 ? "one value" : $"1 to {MaxValues} values")} (got {values.Count}).", nameof(values));
        }

        var ordering = @operator is PgRowConditionOperator.Lt or PgRowConditionOperator.Lte or PgRowConditionOperator.Gt or PgRowConditionOperator.Gte;
        foreach (var value in values)
        {
            var allowed = ordering
                ? value.ValueKind is JsonValueKind.Number or JsonValueKind.String
                : value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null;
            if (!allowed)
            {
                throw new ArgumentException($"'{@operator}' cannot compare with a JSON {value.ValueKind}.", nameof(values));
            }
        }

        Column = column;
        Operator = @operator;
        Values = [.. values.Select(v => v.Clone())];
    }

    /// <summary>The column: a key of the row's JSON.</summary>
    public string Column { get; }

    /// <summary>The comparison.</summary>
    public PgRowConditionOperator Operator { get; }

    /// <summary>The values compared with (copies, independent of any <see cref="JsonDocument"/>).</summary>
    public IReadOnlyList<JsonElement> Values { get; }
}
