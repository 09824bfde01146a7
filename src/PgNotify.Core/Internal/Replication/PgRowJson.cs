using System.Buffers;
using System.Text;
using System.Text.Json;

namespace PgNotify.Internal;

/// <summary>A replicated column: its name (and UTF-8 bytes, for jsonb's key order), its type, whether it is excluded.</summary>
internal sealed record ReplicatedColumn(string Name, PgJsonType Type, bool Excluded)
{
    public byte[] Utf8Name { get; } = Encoding.UTF8.GetBytes(Name);
}

/// <summary>
/// Builds the JSON of a row from pgoutput's text values, byte for byte as <c>to_jsonb(row)</c> in the trigger does:
/// keys in jsonb's order (shorter keys first, then by bytes), each value converted by its type
/// (<see cref="PgJsonKind"/>), excluded columns left out. Values only the database can render (json, composite types,
/// BC timestamps) are rendered there with to_jsonb. Runs on the dispatcher loop.
/// </summary>
internal static class PgRowJson
{
    /// <summary>The columns' indexes in jsonb's key order, without excluded columns.</summary>
    public static int[] KeyOrder(IReadOnlyList<ReplicatedColumn> columns) =>
        [.. Enumerable.Range(0, columns.Count)
            .Where(i => !columns[i].Excluded)
            .Order(Comparer<int>.Create((a, b) => CompareKeys(columns[a].Utf8Name, columns[b].Utf8Name)))];

    /// <summary>jsonb's key order: shorter first, then bytewise (lengthCompareJsonbString).</summary>
    public static int CompareKeys(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        a.Length != b.Length ? a.Length.CompareTo(b.Length) : a.SequenceCompareTo(b);

    /// <summary>
    /// The row's JSON text in UTF-8 (validated, not parsed: a change is framed from this text, and parsed only if a
    /// filter or hook reads it); <paramref name="values"/> holds each column's text, <see langword="null"/> for SQL NULL.
    /// </summary>
    public static async ValueTask<ReadOnlyMemory<byte>> BuildAsync(
        IReadOnlyList<ReplicatedColumn> columns, int[] keyOrder, string?[] values, PgTypeCatalog catalog, CancellationToken cancellationToken)
    {
        Dictionary<int, string>? rendered = null;
        foreach (var i in keyOrder)
        {
            if (values[i] is { } text && NeedsDatabase(columns[i].Type, text))
            {
                rendered ??= [];
                rendered[i] = await catalog.RenderInDatabaseAsync(columns[i].Type, text, cancellationToken).ConfigureAwait(false);
            }
        }

        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var i in keyOrder)
            {
                writer.WritePropertyName(columns[i].Utf8Name);
                if (values[i] is not { } text)
                {
                    writer.WriteNullValue();
                }
                else if (rendered is not null && rendered.TryGetValue(i, out var json))
                {
                    writer.WriteRawValue(json, skipInputValidation: true);
                }
                else
                {
                    WriteValue(writer, columns[i].Type, text);
                }
            }

            writer.WriteEndObject();
        }

        // Values the database rendered were written as they came: read the whole text once to be sure it is JSON.
        var row = buffer.WrittenSpan.ToArray();
        var reader = new Utf8JsonReader(row, new JsonReaderOptions { MaxDepth = PgChangePayload.MaxDepth });
        while (reader.Read())
        {
        }

        return row;
    }

    /// <summary>Whether only PostgreSQL can render this value as to_jsonb does.</summary>
    public static bool NeedsDatabase(PgJsonType type, string text) => type.Kind switch
    {
        PgJsonKind.Database => true,
        PgJsonKind.Timestamp or PgJsonKind.TimestampTz => text.EndsWith(" BC", StringComparison.Ordinal),
        PgJsonKind.Number => PgNumericText.Canonical(text) is null && !IsNonFinite(text),
        PgJsonKind.Array => type.Element!.NeedsDatabase
            || !PgArrayText.TryParse(text, type.Delimiter, out var parsed)
            || Leaves(parsed).Any(leaf => leaf is not null && NeedsDatabase(type.Element, leaf)),
        _ => false,
    };

    /// <summary>Writes a value that does not need the database (see <see cref="NeedsDatabase"/>).</summary>
    public static void WriteValue(Utf8JsonWriter writer, PgJsonType type, string text)
    {
        switch (type.Kind)
        {
            case PgJsonKind.Number when PgNumericText.Canonical(text) is { } number:
                writer.WriteRawValue(number, skipInputValidation: true);
                break;
            case PgJsonKind.Bool:
                writer.WriteBooleanValue(text == "t");
                break;
            case PgJsonKind.Jsonb:
                writer.WriteRawValue(text, skipInputValidation: true);
                break;
            case PgJsonKind.Timestamp:
                writer.WriteStringValue(IsNonFinite(text) ? text : text.Replace(' ', 'T'));
                break;
            case PgJsonKind.TimestampTz:
                writer.WriteStringValue(IsNonFinite(text) ? text : IsoTimestampTz(text));
                break;
            case PgJsonKind.Array when PgArrayText.TryParse(text, type.Delimiter, out var parsed):
                WriteArray(writer, type.Element!, parsed);
                break;
            default:
                writer.WriteStringValue(text); // NaN and Infinity numbers, text-like types, and unknown types
                break;
        }
    }

    /// <summary>
    /// timestamptz output (ISO DateStyle: <c>2026-12-01 03:29:33.009+00</c>, <c>...+05:30</c>) as to_jsonb writes it:
    /// a 'T' between date and time, and the offset with minutes (<c>+00:00</c>).
    /// </summary>
    public static string IsoTimestampTz(string text)
    {
        var space = text.IndexOf(' ', StringComparison.Ordinal);
        var sign = space < 0 ? -1 : text.AsSpan(space).IndexOfAny('+', '-');
        if (space < 0 || sign < 0)
        {
            return text;
        }

        sign += space;
        var offset = text[sign..];
        return string.Concat(text.AsSpan(0, space), "T", text.AsSpan(space + 1, sign - space - 1), offset.Length == 3 ? offset + ":00" : offset);
    }

    private static bool IsNonFinite(string text) => text is "NaN" or "Infinity" or "-Infinity" or "infinity" or "-infinity";

    private static void WriteArray(Utf8JsonWriter writer, PgJsonType element, List<object?> items)
    {
        writer.WriteStartArray();
        foreach (var item in items)
        {
            switch (item)
            {
                case null:
                    writer.WriteNullValue();
                    break;
                case List<object?> nested:
                    WriteArray(writer, element, nested);
                    break;
                default:
                    WriteValue(writer, element, (string)item);
                    break;
            }
        }

        writer.WriteEndArray();
    }

    private static IEnumerable<string?> Leaves(List<object?> items)
    {
        foreach (var item in items)
        {
            if (item is List<object?> nested)
            {
                foreach (var leaf in Leaves(nested))
                {
                    yield return leaf;
                }
            }
            else
            {
                yield return (string?)item;
            }
        }
    }
}
