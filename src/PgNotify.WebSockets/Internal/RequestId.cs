using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>A request's <c>id</c>, echoed in its answer: absent, a string, or an integer.</summary>
internal readonly struct RequestId
{
    public const int MaxLength = 128;

    private readonly string? _text;
    private readonly long? _number;

    private RequestId(string? text, long? number)
    {
        _text = text;
        _number = number;
    }

    public static RequestId None => default;

    public static bool TryRead(JsonElement root, out RequestId id)
    {
        id = None;
        if (!root.TryGetProperty("id", out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return true;
        }

        if (value.ValueKind == JsonValueKind.String && RowFilter.TryReadString(value) is { Length: <= MaxLength } text)
        {
            id = new RequestId(text, null);
            return true;
        }

        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number))
        {
            id = new RequestId(null, number);
            return true;
        }

        return false;
    }

    public void WriteTo(Utf8JsonWriter writer)
    {
        if (_text is not null)
        {
            writer.WriteString("id"u8, _text);
        }
        else if (_number is { } n)
        {
            writer.WriteNumber("id"u8, n);
        }
        else
        {
            writer.WriteNull("id"u8);
        }
    }
}
