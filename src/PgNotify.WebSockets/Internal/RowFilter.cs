using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// A subscription's row filter, compiled once: every condition must hold. INSERT is tested on the new row, DELETE on
/// the old row, UPDATE on either (so a client sees a row leave its filter); TRUNCATE always passes.
/// </summary>
internal sealed class RowFilter
{
    public const int MaxConditions = 16;

    private readonly RowFilterCondition[] _conditions;

    private RowFilter(RowFilterCondition[] conditions) => _conditions = conditions;

    public bool Matches(PgChange change) => change.Operation switch
    {
        PgChangeOperation.Insert => Matches(change.Data),
        PgChangeOperation.Delete => Matches(change.Old),
        PgChangeOperation.Update => Matches(change.Data) || Matches(change.Old),
        _ => true,
    };

    /// <summary>Whether a row (a snapshot's) passes every condition, tested as an INSERT's new row is.</summary>
    public bool MatchesRow(JsonElement row) => Matches(row);

    /// <summary>The conditions for Core's snapshot reader, which evaluates them in SQL (with parameters).</summary>
    public IReadOnlyList<PgRowCondition> ToRowConditions() => [.. _conditions.Select(c => c.ToRowCondition())];

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

        var conditions = new List<RowFilterCondition>();
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

                    if (RowFilterCondition.Create(column, opName, op.Value, out error) is not { } condition)
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
            else if (RowFilterCondition.Create(column, "eq", property.Value, out error) is { } equality)
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
}
