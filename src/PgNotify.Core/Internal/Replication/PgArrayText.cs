using System.Text;

namespace PgNotify.Internal;

/// <summary>
/// Parses PostgreSQL's text output of an array (<c>{1,2}</c>, <c>{{"a\"b",NULL},{c,d}}</c>, <c>[0:1]={1,2}</c>) into
/// nested lists of element texts (a <see langword="null"/> leaf is SQL NULL). Pure; PostgreSQL arrays have at most 6
/// dimensions, and deeper input is refused.
/// </summary>
internal static class PgArrayText
{
    private const int MaxDimensions = 6;

    /// <summary>Parses <paramref name="text"/>; <see langword="false"/> when it is not an array literal.</summary>
    public static bool TryParse(string text, char delimiter, out List<object?> result)
    {
        result = [];
        var i = 0;
        if (text.StartsWith('['))
        {
            // Explicit bounds ("[0:1]={...}"): to_jsonb ignores them.
            var eq = text.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                return false;
            }

            i = eq + 1;
        }

        if (i >= text.Length || text[i] != '{')
        {
            return false;
        }

        if (!ParseArray(text, ref i, delimiter, 1, result))
        {
            return false;
        }

        return i == text.Length;
    }

    private static bool ParseArray(string text, ref int i, char delimiter, int depth, List<object?> into)
    {
        if (depth > MaxDimensions)
        {
            return false;
        }

        i++; // '{'
        if (i < text.Length && text[i] == '}')
        {
            i++;
            return true;
        }

        while (i < text.Length)
        {
            if (text[i] == '{')
            {
                var nested = new List<object?>();
                if (!ParseArray(text, ref i, delimiter, depth + 1, nested))
                {
                    return false;
                }

                into.Add(nested);
            }
            else if (text[i] == '"')
            {
                var sb = new StringBuilder();
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    if (text[i] == '\\' && i + 1 < text.Length)
                    {
                        i++;
                    }

                    sb.Append(text[i]);
                    i++;
                }

                if (i >= text.Length)
                {
                    return false;
                }

                i++; // closing quote
                into.Add(sb.ToString());
            }
            else
            {
                var start = i;
                while (i < text.Length && text[i] != delimiter && text[i] != '}')
                {
                    if (text[i] is '{' or '"')
                    {
                        return false;
                    }

                    i++;
                }

                var element = text[start..i];
                into.Add(element == "NULL" ? null : element);
            }

            if (i >= text.Length)
            {
                return false;
            }

            if (text[i] == '}')
            {
                i++;
                return true;
            }

            if (text[i] != delimiter)
            {
                return false;
            }

            i++;
        }

        return false;
    }
}
