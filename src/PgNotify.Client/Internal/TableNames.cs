namespace PgNotify.Client.Internal;

/// <summary>Table names as the server writes them: <c>name</c> for schema public, otherwise <c>schema.name</c>.</summary>
internal static class TableNames
{
    /// <summary>The key a subscription is found by: <c>schema.name</c>, schema included.</summary>
    public static string Qualify(string schema, string table) => schema + "." + table;

    /// <summary>Splits <c>schema.name</c> or <c>name</c> (schema public); no quoting.</summary>
    public static (string Schema, string Name) Parse(string table)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(table);
        var text = table.Trim();
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (text.Contains('"', StringComparison.Ordinal) || dot == 0 || dot == text.Length - 1 || (dot > 0 && text.IndexOf('.', dot + 1) >= 0))
        {
            throw new ArgumentException($"'{table}' is not a table name: use name (schema public) or schema.name, without quotes.", nameof(table));
        }

        return dot < 0 ? ("public", text) : (text[..dot], text[(dot + 1)..]);
    }

    /// <summary>What the server calls the table in requests and answers.</summary>
    public static string Display(string schema, string name) => schema == "public" ? name : schema + "." + name;
}
