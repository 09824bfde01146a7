using System.Buffers;
using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Writes a row's JSON text into a frame exactly as <see cref="JsonElement.WriteTo"/> would write the parsed row (no
/// whitespace, strings escaped by the writer's encoder, numbers as they came), without parsing it into a document.
/// </summary>
/// <remarks>
/// Most rows are plain ASCII with nothing the encoder escapes: those are copied with their whitespace removed. Any
/// other row is copied token by token from a <see cref="Utf8JsonReader"/> to the writer, which escapes as it would
/// have. Both paths are checked against <see cref="JsonElement.WriteTo"/> by property tests.
/// </remarks>
internal static class RowText
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = int.MaxValue };

    /// <summary>Writes <paramref name="json"/> (one valid JSON value) as the writer's next value.</summary>
    /// <exception cref="InvalidOperationException">A string holds an escape that is not valid Unicode (a lone surrogate).</exception>
    public static void Write(Utf8JsonWriter writer, ReadOnlySpan<byte> json)
    {
        var compact = ArrayPool<byte>.Shared.Rent(json.Length);
        try
        {
            if (TryCompactPlain(json, compact, out var length))
            {
                writer.WriteRawValue(compact.AsSpan(0, length), skipInputValidation: true);
                return;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(compact);
        }

        Copy(writer, json);
    }

    /// <summary>
    /// Copies <paramref name="json"/> without the whitespace between tokens, if every string in it is printable ASCII
    /// that the default encoder writes as it is (no escape, no <c>&lt; &gt; &amp; ' + `</c>, no DEL).
    /// </summary>
    internal static bool TryCompactPlain(ReadOnlySpan<byte> json, Span<byte> compact, out int length)
    {
        length = 0;
        var inString = false;
        foreach (var b in json)
        {
            if (inString)
            {
                if (b == (byte)'"')
                {
                    inString = false;
                }
                else if (b is < 0x20 or >= 0x7F or (byte)'\\' or (byte)'<' or (byte)'>' or (byte)'&' or (byte)'\'' or (byte)'+' or (byte)'`')
                {
                    return false;
                }
            }
            else if (b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r')
            {
                continue;
            }
            else if (b == (byte)'"')
            {
                inString = true;
            }

            compact[length++] = b;
        }

        return true;
    }

    /// <summary>Copies the value token by token: what <see cref="JsonElement.WriteTo"/> does, without the document.</summary>
    private static void Copy(Utf8JsonWriter writer, ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        byte[]? scratch = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartObject:
                        writer.WriteStartObject();
                        break;
                    case JsonTokenType.EndObject:
                        writer.WriteEndObject();
                        break;
                    case JsonTokenType.StartArray:
                        writer.WriteStartArray();
                        break;
                    case JsonTokenType.EndArray:
                        writer.WriteEndArray();
                        break;
                    case JsonTokenType.PropertyName:
                        writer.WritePropertyName(Unescaped(ref reader, ref scratch));
                        break;
                    case JsonTokenType.String:
                        writer.WriteStringValue(Unescaped(ref reader, ref scratch));
                        break;
                    case JsonTokenType.Number:
                        writer.WriteRawValue(reader.ValueSpan, skipInputValidation: true);
                        break;
                    case JsonTokenType.True:
                        writer.WriteBooleanValue(true);
                        break;
                    case JsonTokenType.False:
                        writer.WriteBooleanValue(false);
                        break;
                    case JsonTokenType.Null:
                        writer.WriteNullValue();
                        break;
                }
            }
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
    }

    /// <summary>The string or name the reader is on, unescaped to UTF-8 (the writer escapes it again as it must).</summary>
    private static ReadOnlySpan<byte> Unescaped(ref Utf8JsonReader reader, ref byte[]? scratch)
    {
        if (!reader.ValueIsEscaped)
        {
            return reader.ValueSpan;
        }

        // Unescaped UTF-8 is never longer than the escaped text.
        if (scratch is null || scratch.Length < reader.ValueSpan.Length)
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }

            scratch = ArrayPool<byte>.Shared.Rent(reader.ValueSpan.Length);
        }

        var written = reader.CopyString(scratch);
        return scratch.AsSpan(0, written);
    }
}
