using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace PgNotify;

/// <summary>
/// A table's schema and name, exactly as PostgreSQL stores them (case-sensitive, no case folding).
/// </summary>
/// <remarks>
/// The text form is <c>name</c> (schema <c>public</c>) or <c>schema.name</c>. A part that contains a dot or a double
/// quote is written in double quotes with inner quotes doubled, as in SQL: <c>sales."order.items"</c>. Nothing is
/// ever pasted into SQL text: the installer passes names as parameters and PostgreSQL quotes them.
/// </remarks>
public readonly struct PgTableName : IEquatable<PgTableName>
{
    /// <summary>The schema a bare table name belongs to.</summary>
    public const string DefaultSchema = "public";

    /// <summary>PostgreSQL's limit on identifier length, in bytes (NAMEDATALEN - 1).</summary>
    public const int MaxIdentifierBytes = 63;

    private readonly string? _schema;
    private readonly string? _name;

    /// <summary>Creates a table name from its two parts.</summary>
    /// <param name="schema">The schema, exactly as stored.</param>
    /// <param name="name">The table's name, exactly as stored.</param>
    /// <exception cref="ArgumentException">A part is empty, longer than 63 bytes, or contains a NUL character.</exception>
    public PgTableName(string schema, string name)
    {
        ValidatePart(schema, nameof(schema));
        ValidatePart(name, nameof(name));
        _schema = schema;
        _name = name;
    }

    /// <summary>The schema, exactly as stored.</summary>
    public string Schema => _schema ?? DefaultSchema;

    /// <summary>The table's name, exactly as stored.</summary>
    public string Name => _name ?? string.Empty;

    /// <summary>Parses <c>name</c>, <c>schema.name</c> or their double-quoted forms.</summary>
    /// <param name="text">The text to parse.</param>
    /// <returns>The table name.</returns>
    /// <exception cref="FormatException">The text is not a valid table name; the message says why.</exception>
    public static PgTableName Parse(string text)
    {
        if (!TryParse(text, out var result, out var error))
        {
            throw new FormatException(error);
        }

        return result;
    }

    /// <summary>Tries to parse <c>name</c>, <c>schema.name</c> or their double-quoted forms.</summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="result">The table name, when parsing succeeded.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a valid table name.</returns>
    public static bool TryParse([NotNullWhen(true)] string? text, out PgTableName result) =>
        TryParse(text, out result, out _);

    /// <summary>Tries to parse a table name and says why it is not one.</summary>
    /// <param name="text">The text to parse.</param>
    /// <param name="result">The table name, when parsing succeeded.</param>
    /// <param name="error">Why parsing failed, when it did.</param>
    /// <returns><see langword="true"/> when <paramref name="text"/> is a valid table name.</returns>
    public static bool TryParse([NotNullWhen(true)] string? text, out PgTableName result, [NotNullWhen(false)] out string? error)
    {
        result = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "A table name is empty.";
            return false;
        }

        var parts = new List<string>(2);
        var i = 0;
        while (true)
        {
            var sb = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                i++;
                var closed = false;
                while (i < text.Length)
                {
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"')
                        {
                            sb.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        closed = true;
                        break;
                    }

                    sb.Append(text[i++]);
                }

                if (!closed)
                {
                    error = $"Table name '{text}' has an unclosed double quote.";
                    return false;
                }
            }
            else
            {
                while (i < text.Length && text[i] != '.')
                {
                    if (text[i] == '"')
                    {
                        error = $"Table name '{text}' has a double quote inside an unquoted part; quote the whole part, doubling inner quotes.";
                        return false;
                    }

                    sb.Append(text[i++]);
                }
            }

            parts.Add(sb.ToString());
            if (i == text.Length)
            {
                break;
            }

            if (text[i] != '.' || parts.Count == 2)
            {
                error = $"Table name '{text}' must be 'table' or 'schema.table'.";
                return false;
            }

            i++;
        }

        var schema = parts.Count == 2 ? parts[0] : DefaultSchema;
        var name = parts[^1];
        if (PartError(schema) is { } schemaError)
        {
            error = $"Table name '{text}': the schema {schemaError}";
            return false;
        }

        if (PartError(name) is { } nameError)
        {
            error = $"Table name '{text}': the table name {nameError}";
            return false;
        }

        result = new PgTableName(schema, name);
        error = null;
        return true;
    }

    /// <summary>Whether this is the default value (no table).</summary>
    public bool IsEmpty => Name.Length == 0;

    /// <inheritdoc />
    public bool Equals(PgTableName other) =>
        string.Equals(Schema, other.Schema, StringComparison.Ordinal) && string.Equals(Name, other.Name, StringComparison.Ordinal);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is PgTableName other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(StringComparer.Ordinal.GetHashCode(Schema), StringComparer.Ordinal.GetHashCode(Name));

    /// <summary>The text form: <c>name</c> in schema <c>public</c>, else <c>schema.name</c>, quoting parts that need it.</summary>
    /// <returns>The table name as text that <see cref="Parse"/> reads back.</returns>
    public override string ToString() =>
        Schema == DefaultSchema ? QuotePart(Name) : QuotePart(Schema) + "." + QuotePart(Name);

    /// <summary>Compares two table names for equality (ordinal, case-sensitive).</summary>
    /// <param name="left">The first name.</param>
    /// <param name="right">The second name.</param>
    /// <returns><see langword="true"/> when schema and name are equal.</returns>
    public static bool operator ==(PgTableName left, PgTableName right) => left.Equals(right);

    /// <summary>Compares two table names for inequality.</summary>
    /// <param name="left">The first name.</param>
    /// <param name="right">The second name.</param>
    /// <returns><see langword="true"/> when schema or name differ.</returns>
    public static bool operator !=(PgTableName left, PgTableName right) => !left.Equals(right);

    private static string QuotePart(string part) =>
        part.Length > 0 && part[0] != ' ' && part[^1] != ' ' && part.IndexOfAny(['.', '"']) < 0
            ? part
            : "\"" + part.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string? PartError(string part)
    {
        if (part.Length == 0)
        {
            return "is empty.";
        }

        if (part.Contains('\0', StringComparison.Ordinal))
        {
            return "contains a NUL character.";
        }

        if (Encoding.UTF8.GetByteCount(part) > MaxIdentifierBytes)
        {
            return $"is longer than PostgreSQL's {MaxIdentifierBytes}-byte identifier limit.";
        }

        return null;
    }

    private static void ValidatePart(string part, string paramName)
    {
        ArgumentNullException.ThrowIfNull(part, paramName);
        if (PartError(part) is { } error)
        {
            throw new ArgumentException($"'{part}' {error}", paramName);
        }
    }
}
