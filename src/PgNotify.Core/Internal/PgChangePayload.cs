using System.Text;
using System.Text.Json;

namespace PgNotify.Internal;

/// <summary>
/// A notification payload as the trigger wrote it: a whole change, a reference to a parked large one (with the
/// change's header, so the parked row can be checked against it), or a lossless wake-up.
/// </summary>
/// <remarks>
/// Anyone who can connect can NOTIFY on the channel, so a payload is hostile input until proven otherwise.
/// <see cref="Parse"/> accepts only what the trigger writes (types, ranges, valid Unicode, names PostgreSQL can hold)
/// and reports anything else as a <see cref="FormatException"/>, never as another exception.
/// </remarks>
internal readonly record struct PgChangePayload(PgChange? Change, long? LargePayloadId, bool IsWakeUp = false)
{
    /// <summary>
    /// How deep the JSON of a change may nest. PostgreSQL has no fixed depth limit of its own (its parser recurses until
    /// <c>max_stack_depth</c>: about 12,000 levels at the default 2 MB, about 50,000 at 7.5 MB), so no depth that it can
    /// store is refused here. <see cref="Utf8JsonReader"/> (the payload, a row's lazy parse, a frame's copy) and
    /// <see cref="JsonDocument"/> (snapshot rows) read without recursion, so a deep row costs memory in proportion to its
    /// size only.
    /// </summary>
    public const int MaxDepth = int.MaxValue;

    /// <summary>The options every row JSON of PgNotify is read with; see <see cref="MaxDepth"/>.</summary>
    public static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = MaxDepth };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>For a parked row (<see cref="LargePayloadId"/>): the header the notification carried, to check the row against.</summary>
    public PgChange? Header { get; init; }

    /// <summary>Parses the trigger's JSON payload.</summary>
    /// <param name="payload">The payload text.</param>
    /// <param name="receivedAt">When the listener received it.</param>
    /// <param name="position">The change log position, for rows read from the log.</param>
    /// <returns>The parsed payload.</returns>
    /// <exception cref="FormatException">The payload is not one PgNotify's trigger writes; the message says why.
    /// No other exception is thrown for any input.</exception>
    public static PgChangePayload Parse(string payload, DateTimeOffset receivedAt, long? position = null)
    {
        ArgumentNullException.ThrowIfNull(payload);
        byte[] utf8;
        try
        {
            utf8 = StrictUtf8.GetBytes(payload);
        }
        catch (EncoderFallbackException)
        {
            throw new FormatException("The notification payload is not valid Unicode (a lone surrogate).");
        }

        try
        {
            // Strings the trigger writes are always valid Unicode (jsonb refuses lone surrogate escapes), so a payload
            // with one is forged: refused here, every consumer may call GetString() on any string of a change.
            // Only a \u escape can spell a lone surrogate (raw ones failed the strict encoding above): most payloads
            // have none and skip this pass.
            if (payload.Contains("\\u", StringComparison.Ordinal))
            {
                RefuseInvalidStrings(utf8);
            }

            return ParseRoot(PayloadFields.Read(utf8), utf8, receivedAt, position);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"The notification payload is not JSON: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new FormatException($"The notification payload holds an invalid value: {ex.Message}", ex);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"The notification payload holds an invalid name: {ex.Message}", ex);
        }
    }

    private static PgChangePayload ParseRoot(PayloadFields root, byte[] utf8, DateTimeOffset receivedAt, long? position)
    {
        if (!root.Version.IsNumber || root.Version.Int64 != 1)
        {
            throw new FormatException("The notification payload has no supported version (\"v\":1).");
        }

        if (root.Wake.IsPresent)
        {
            _ = PositiveInt64(root.Wake, "wake") ?? throw new FormatException("The notification payload's \"wake\" is null.");
            return new PgChangePayload(null, null, IsWakeUp: true);
        }

        var table = new PgTableName(RequiredString(root.Schema, "schema"), RequiredString(root.Table, "table"));
        var operation = RequiredString(root.Op, "op") switch
        {
            "INSERT" => PgChangeOperation.Insert,
            "UPDATE" => PgChangeOperation.Update,
            "DELETE" => PgChangeOperation.Delete,
            "TRUNCATE" => PgChangeOperation.Truncate,
            var other => throw new FormatException($"The notification payload has an unknown operation '{Shorten(other)}'."),
        };
        var xid = NonNegativeInt64(root.Xid, "xid") ?? 0;
        var seq = NonNegativeInt64(root.Seq, "seq") ?? 0;

        if (root.Ref.IsPresent)
        {
            var id = PositiveInt64(root.Ref, "ref") ?? throw new FormatException("The notification payload's \"ref\" is null.");
            var header = new PgChange(table, operation, null, null, xid, seq, null, null, receivedAt);
            return new PgChangePayload(null, id) { Header = header };
        }

        var data = OptionalObject(root.Data, utf8, "data");
        var old = OptionalObject(root.Old, utf8, "old");
        var shapeOk = operation switch
        {
            PgChangeOperation.Insert => !data.IsEmpty && old.IsEmpty,
            PgChangeOperation.Update => !data.IsEmpty && !old.IsEmpty,
            PgChangeOperation.Delete => data.IsEmpty && !old.IsEmpty,
            _ => data.IsEmpty && old.IsEmpty,
        };
        if (!shapeOk)
        {
            throw new FormatException($"The notification payload's \"data\"/\"old\" do not fit a {operation}.");
        }

        DateTimeOffset? timestamp = null;
        if (root.Ts.IsPresent && root.Ts.Type != JsonTokenType.Null)
        {
            timestamp = root.Ts.Timestamp ?? throw new FormatException("The notification payload's \"ts\" is not a timestamp.");
        }

        long? pos = position;
        if (pos is null && root.Pos.IsPresent)
        {
            pos = PositiveInt64(root.Pos, "pos");
        }

        // The rows stay text: parsed only if a filter or hook reads them (PgChange.Data), framed from these bytes.
        var change = PgChange.FromUtf8(table, operation, data, old, xid, seq, timestamp, pos, receivedAt);
        return new PgChangePayload(change, null);
    }

    private static void RefuseInvalidStrings(byte[] utf8)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
            {
                // Unescaping throws InvalidOperationException for a lone surrogate escape such as "\ud800".
                _ = reader.GetString();
            }
        }
    }

    private static string RequiredString(PayloadField field, string name) =>
        field.Type == JsonTokenType.String
            ? field.Text!
            : throw new FormatException($"The notification payload has no \"{name}\" string.");

    private static long? NonNegativeInt64(PayloadField field, string name)
    {
        if (!field.IsPresent || field.Type == JsonTokenType.Null)
        {
            return null;
        }

        return field.IsNumber && field.Int64 is { } number && number >= 0
            ? number
            : throw new FormatException($"The notification payload's \"{name}\" is not a non-negative 64-bit integer.");
    }

    private static long? PositiveInt64(PayloadField field, string name)
    {
        if (field.Type == JsonTokenType.Null)
        {
            return null;
        }

        return field.IsNumber && field.Int64 is { } number && number > 0
            ? number
            : throw new FormatException($"The notification payload's \"{name}\" is not a positive 64-bit integer.");
    }

    private static ReadOnlyMemory<byte> OptionalObject(PayloadField field, byte[] utf8, string name)
    {
        if (!field.IsPresent || field.Type == JsonTokenType.Null)
        {
            return default;
        }

        return field.Type == JsonTokenType.StartObject
            ? utf8.AsMemory(field.Start, field.Length)
            : throw new FormatException($"The notification payload's \"{name}\" is not a JSON object.");
    }

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
