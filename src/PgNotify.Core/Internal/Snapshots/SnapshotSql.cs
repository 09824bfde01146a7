using System.Text;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace PgNotify.Internal;

/// <summary>
/// The SQL of a table snapshot (pure): the rows as the trigger's JSON (<c>to_jsonb(row)</c> minus the excluded
/// columns), the conditions over that JSON with every value and name as a parameter, ordered by the primary key.
/// </summary>
/// <remarks>
/// Each condition is either exact (the same answer as <c>RowFilter</c> in memory) or, where PostgreSQL and .NET could
/// disagree (numbers longer than 15 characters, string order with characters from U+D800 up), a superset that only
/// checks the JSON type: the caller tests each row in memory too, so the result is always exact. Casts are guarded by
/// <c>CASE</c>, whose order PostgreSQL keeps, so no row's value can make the query fail.
/// </remarks>
internal static class SnapshotSql
{
    /// <summary>Numbers of at most this many characters are compared in SQL (they are exact in decimal and numeric).</summary>
    public const int ExactNumberLength = 15;

    /// <summary>The alias of the table's row in the query (the row is always referenced as <c>alias.*</c>).</summary>
    private const string RowAlias = "pgnotify_row";

    /// <summary>
    /// The table's key, its excluded columns (NULL when the source does not stream it), whether it exists and whether this
    /// role may read it. Parameters: <c>$1</c> schema, <c>$2</c> name, <c>$3</c> the exclusions configured in the app.
    /// </summary>
    public static string TableInfoQuery(WatchedTables watched) => $"""
        SELECT c.rel IS NOT NULL,
               (SELECT array_agg(a.attname::text ORDER BY k.n)
                FROM pg_catalog.pg_index i
                CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = c.rel AND i.indisprimary),
               {watched.ExcludedColumnsSql},
               CASE WHEN c.rel IS NULL THEN false ELSE pg_catalog.has_table_privilege(c.rel, 'SELECT') END
        FROM (SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1, $2)) AS rel) c
        """;

    /// <summary>
    /// The rows' query: <c>$1</c> is the excluded columns (<c>text[]</c>), the conditions' parameters follow.
    /// </summary>
    public static (string Sql, List<NpgsqlParameter> Parameters) RowsQuery(
        PgTableName table, IReadOnlyList<string> key, IReadOnlyList<string> excluded, IReadOnlyList<PgRowCondition> conditions)
    {
        if (key.Count == 0)
        {
            throw new ArgumentException("A snapshot is ordered by a primary key.", nameof(key));
        }

        var parameters = new List<NpgsqlParameter>
        {
            new() { Value = excluded.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
        };
        var sql = new StringBuilder();
        sql.Append("SELECT q.j::text FROM ").Append(QuoteIdentifier(table.Schema)).Append('.').Append(QuoteIdentifier(table.Name))
            .Append(" AS ").Append(RowAlias)
            .Append(" CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(").Append(RowAlias).Append(".*) OPERATOR(pg_catalog.-) $1::text[] AS j) AS q");
        var first = true;
        foreach (var condition in conditions)
        {
            sql.Append(first ? " WHERE " : " AND ");
            first = false;
            AppendCondition(sql, parameters, condition);
        }

        sql.Append(" ORDER BY ");
        for (var i = 0; i < key.Count; i++)
        {
            sql.Append(i == 0 ? "" : ", ").Append(RowAlias).Append('.').Append(QuoteIdentifier(key[i]));
        }

        return (sql.ToString(), parameters);
    }

    /// <summary>A PostgreSQL identifier in double quotes, embedded quotes doubled; NUL is refused.</summary>
    public static string QuoteIdentifier(string name)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("An identifier cannot hold NUL.", nameof(name));
        }

        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    private static void AppendCondition(StringBuilder sql, List<NpgsqlParameter> parameters, PgRowCondition condition)
    {
        var column = Add(parameters, condition.Column, NpgsqlDbType.Text);
        var cell = $"(q.j OPERATOR(pg_catalog.->) {column}::text)";
        switch (condition.Operator)
        {
            case PgRowConditionOperator.Eq:
                sql.Append(Equality(cell, condition.Values[0], parameters));
                break;
            case PgRowConditionOperator.In:
                sql.Append('(');
                for (var i = 0; i < condition.Values.Count; i++)
                {
                    sql.Append(i == 0 ? "" : " OR ").Append(Equality(cell, condition.Values[i], parameters));
                }

                sql.Append(')');
                break;
            case PgRowConditionOperator.Neq:
                sql.Append(Inequality(cell, condition.Values[0], parameters));
                break;
            default:
                sql.Append(Ordering(cell, column, condition.Operator, condition.Values[0], parameters));
                break;
        }
    }

    private static string Equality(string cell, JsonElement value, List<NpgsqlParameter> parameters) => value.ValueKind switch
    {
        JsonValueKind.String => $"({cell} OPERATOR(pg_catalog.=) pg_catalog.to_jsonb({Add(parameters, value.GetString()!, NpgsqlDbType.Text)}::text))",
        JsonValueKind.Number when ExactNumber(value) is { } number =>
            $"(CASE WHEN pg_catalog.jsonb_typeof({cell}) = 'number' THEN (pg_catalog.length({cell}::text) > {ExactNumberLength} OR {cell}::numeric OPERATOR(pg_catalog.=) {Add(parameters, number, NpgsqlDbType.Numeric)}::numeric) ELSE false END)",
        JsonValueKind.Number => $"(pg_catalog.jsonb_typeof({cell}) = 'number')",
        _ => $"({cell} OPERATOR(pg_catalog.=) {Literal(value)})",
    };

    private static string Inequality(string cell, JsonElement value, List<NpgsqlParameter> parameters) => value.ValueKind switch
    {
        JsonValueKind.String => $"({cell} OPERATOR(pg_catalog.<>) pg_catalog.to_jsonb({Add(parameters, value.GetString()!, NpgsqlDbType.Text)}::text))",
        JsonValueKind.Number when ExactNumber(value) is { } number =>
            $"(CASE WHEN {cell} IS NULL THEN false WHEN pg_catalog.jsonb_typeof({cell}) = 'number' AND pg_catalog.length({cell}::text) <= {ExactNumberLength} THEN {cell}::numeric OPERATOR(pg_catalog.<>) {Add(parameters, number, NpgsqlDbType.Numeric)}::numeric ELSE true END)",
        JsonValueKind.Number => $"({cell} IS NOT NULL)",
        _ => $"({cell} OPERATOR(pg_catalog.<>) {Literal(value)})",
    };

    private static string Ordering(string cell, string column, PgRowConditionOperator op, JsonElement value, List<NpgsqlParameter> parameters)
    {
        var symbol = op switch
        {
            PgRowConditionOperator.Lt => "<",
            PgRowConditionOperator.Lte => "<=",
            PgRowConditionOperator.Gt => ">",
            _ => ">=",
        };
        if (value.ValueKind == JsonValueKind.Number)
        {
            return ExactNumber(value) is { } number
                ? $"(CASE WHEN pg_catalog.jsonb_typeof({cell}) = 'number' THEN (pg_catalog.length({cell}::text) > {ExactNumberLength} OR {cell}::numeric OPERATOR(pg_catalog.{symbol}) {Add(parameters, number, NpgsqlDbType.Numeric)}::numeric) ELSE false END)"
                : $"(pg_catalog.jsonb_typeof({cell}) = 'number')";
        }

        // Strings: .NET orders by UTF-16 code unit, the "C" collation by UTF-8 byte (code point). The two agree whenever
        // the value has no character from U+D800 up (see the remarks); otherwise only the type is checked here.
        var text = value.GetString()!;
        return text.All(c => c < '\uD800')
            ? $"(CASE WHEN pg_catalog.jsonb_typeof({cell}) = 'string' THEN (q.j OPERATOR(pg_catalog.->>) {column}::text) COLLATE \"C\" OPERATOR(pg_catalog.{symbol}) {Add(parameters, text, NpgsqlDbType.Text)}::text COLLATE \"C\" ELSE false END)"
            : $"(pg_catalog.jsonb_typeof({cell}) = 'string')";
    }

    /// <summary>A number short enough to be exact both in .NET's decimal and in numeric, without an exponent.</summary>
    private static decimal? ExactNumber(JsonElement value)
    {
        var raw = value.GetRawText();
        return raw.Length <= ExactNumberLength && !raw.Contains('e', StringComparison.OrdinalIgnoreCase) && value.TryGetDecimal(out var number)
            ? number
            : null;
    }

    private static string Literal(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.True => "'true'::jsonb",
        JsonValueKind.False => "'false'::jsonb",
        _ => "'null'::jsonb",
    };

    private static string Add(List<NpgsqlParameter> parameters, object value, NpgsqlDbType type)
    {
        parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = type });
        return "$" + parameters.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
