using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>A filter value, read once when the filter is compiled.</summary>
internal sealed class RowFilterValue
{
    private readonly JsonValueKind _kind;
    private readonly string? _text;
    private readonly byte[]? _utf8;
    private readonly decimal? _decimal;
    private readonly double? _double;
    private readonly string? _rawNumber;

    private RowFilterValue(JsonValueKind kind, string? text, decimal? decimalValue, double? doubleValue, string? rawNumber, JsonElement json)
    {
        Json = json;
        _kind = kind;
        _text = text;
        _utf8 = text is null ? null : System.Text.Encoding.UTF8.GetBytes(text);
        _decimal = decimalValue;
        _double = doubleValue;
        _rawNumber = rawNumber;
    }

    /// <summary>The value as JSON (a copy, independent of the request's document): what a snapshot's SQL compares with.</summary>
    public JsonElement Json { get; }

    /// <summary>The value, or <see langword="null"/> for a string that is not valid UTF-16.</summary>
    public static RowFilterValue? Create(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                return RowFilter.TryReadString(element) is { } text ? new RowFilterValue(JsonValueKind.String, text, null, null, null, element.Clone()) : null;
            case JsonValueKind.Number:
                return new RowFilterValue(
                    JsonValueKind.Number,
                    null,
                    element.TryGetDecimal(out var d) ? d : null,
                    element.TryGetDouble(out var f) && double.IsFinite(f) ? f : null,
                    element.GetRawText(),
                    element.Clone());
            default:
                return new RowFilterValue(element.ValueKind, null, null, null, null, element.Clone());
        }
    }

    public bool EqualsCell(JsonElement cell)
    {
        if (cell.ValueKind != _kind)
        {
            return false;
        }

        return _kind switch
        {
            JsonValueKind.String => StringEquals(cell),
            JsonValueKind.Number => CompareNumber(cell) == 0,
            _ => true, // true, false, null
        };
    }

    /// <summary>The order of the cell against this value, or <see langword="null"/> when they do not compare.</summary>
    public int? CompareCell(JsonElement cell)
    {
        if (cell.ValueKind != _kind)
        {
            return null;
        }

        if (_kind == JsonValueKind.Number)
        {
            return CompareNumber(cell);
        }

        if (_kind == JsonValueKind.String && RowFilter.TryReadString(cell) is { } text)
        {
            return Math.Sign(string.CompareOrdinal(text, _text));
        }

        return null;
    }

    private bool StringEquals(JsonElement cell)
    {
        try
        {
            return cell.ValueEquals(_utf8);
        }
        catch (InvalidOperationException)
        {
            return false; // the cell holds an escaped lone surrogate: it equals no valid string
        }
    }

    private int? CompareNumber(JsonElement cell)
    {
        if (_decimal is { } x && cell.TryGetDecimal(out var y))
        {
            return y.CompareTo(x);
        }

        if (_double is { } f && cell.TryGetDouble(out var g) && double.IsFinite(g))
        {
            return g.CompareTo(f);
        }

        // Beyond double's range (1e400): only the same text is known to be equal.
        return string.Equals(cell.GetRawText(), _rawNumber, StringComparison.Ordinal) ? 0 : null;
    }
}
