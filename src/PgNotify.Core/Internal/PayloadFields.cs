using System.Runtime.CompilerServices;
using System.Text.Json;

namespace PgNotify.Internal;

/// <summary>
/// The top-level fields of a notification payload, read in one pass of <see cref="Utf8JsonReader"/> without building
/// a document: scalars are read as they pass, and a row (<c>data</c>, <c>old</c>) is validated and kept as the range
/// of its bytes. Checking the fields is <see cref="PgChangePayload"/>'s job.
/// </summary>
internal struct PayloadFields
{
    public PayloadField Version;
    public PayloadField Wake;
    public PayloadField Schema;
    public PayloadField Table;
    public PayloadField Op;
    public PayloadField Xid;
    public PayloadField Seq;
    public PayloadField Ref;
    public PayloadField Data;
    public PayloadField Old;
    public PayloadField Ts;
    public PayloadField Pos;

    /// <summary>Reads the payload's fields; a field that appears twice counts as its last value, as in a JSON object.</summary>
    /// <exception cref="JsonException">The text is not one JSON value.</exception>
    /// <exception cref="FormatException">The value is not an object.</exception>
    /// <exception cref="InvalidOperationException">A string holds an escape that is not valid Unicode.</exception>
    public static PayloadFields Read(byte[] utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = PgChangePayload.MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            // A scalar or array is read through first, so that text that is not JSON at all says so.
            reader.Skip();
            while (reader.Read())
            {
            }

            throw new FormatException("The notification payload is not a JSON object.");
        }

        var fields = default(PayloadFields);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            ref var field = ref Find(ref fields, ref reader);
            reader.Read();
            field = PayloadField.ReadValue(ref reader, isTimestamp: Unsafe.AreSame(ref field, ref fields.Ts));
        }

        // Past the closing brace: only whitespace may follow, or the reader throws.
        while (reader.Read())
        {
        }

        return fields;
    }

    private static ref PayloadField Find(ref PayloadFields fields, ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("v"u8)) return ref fields.Version;
        if (reader.ValueTextEquals("wake"u8)) return ref fields.Wake;
        if (reader.ValueTextEquals("schema"u8)) return ref fields.Schema;
        if (reader.ValueTextEquals("table"u8)) return ref fields.Table;
        if (reader.ValueTextEquals("op"u8)) return ref fields.Op;
        if (reader.ValueTextEquals("xid"u8)) return ref fields.Xid;
        if (reader.ValueTextEquals("seq"u8)) return ref fields.Seq;
        if (reader.ValueTextEquals("ref"u8)) return ref fields.Ref;
        if (reader.ValueTextEquals("data"u8)) return ref fields.Data;
        if (reader.ValueTextEquals("old"u8)) return ref fields.Old;
        if (reader.ValueTextEquals("ts"u8)) return ref fields.Ts;
        if (reader.ValueTextEquals("pos"u8)) return ref fields.Pos;
        return ref fields._unknown;
    }

    /// <summary>Where a field the trigger does not write is read to (and ignored).</summary>
    private PayloadField _unknown;
}

/// <summary>One top-level field of a payload: its token type and what is needed of its value.</summary>
internal readonly record struct PayloadField(JsonTokenType Type, long? Int64, string? Text, DateTimeOffset? Timestamp, int Start, int Length)
{
    public bool IsPresent => Type != JsonTokenType.None;

    public bool IsNumber => Type == JsonTokenType.Number;

    /// <summary>Reads the value the reader is on; an object or array is skipped over and kept as its byte range.</summary>
    /// <param name="reader">The reader, on the value's first token; left on its last.</param>
    /// <param name="isTimestamp">Whether a string value should also be read as a timestamp.</param>
    public static PayloadField ReadValue(ref Utf8JsonReader reader, bool isTimestamp)
    {
        var type = reader.TokenType;
        switch (type)
        {
            case JsonTokenType.Number:
                return new PayloadField(type, reader.TryGetInt64(out var number) ? number : null, null, null, 0, 0);
            case JsonTokenType.String:
                DateTimeOffset? stamp = isTimestamp && reader.TryGetDateTimeOffset(out var parsed) ? parsed : null;
                return new PayloadField(type, null, reader.GetString(), stamp, 0, 0);
            case JsonTokenType.StartObject or JsonTokenType.StartArray:
                var start = checked((int)reader.TokenStartIndex);
                reader.Skip();
                return new PayloadField(type, null, null, null, start, checked((int)reader.BytesConsumed) - start);
            default:
                return new PayloadField(type, null, null, null, 0, 0);
        }
    }
}
