using System.Text;

namespace PgNotify.Internal;

/// <summary>
/// The text <c>to_jsonb</c> gives a number: PostgreSQL parses the type's output with <c>numeric_in</c> and prints it with
/// <c>numeric_out</c> (jsonb keeps numbers as numeric). So <c>1e+20</c> (float8's output) becomes
/// <c>100000000000000000000</c>, <c>1.5e-07</c> becomes <c>0.00000015</c> and <c>-0</c> becomes <c>0</c>. Pure.
/// </summary>
internal static class PgNumericText
{
    /// <summary>numeric_in refuses exponents beyond this (NUMERIC_MAX_PRECISION).</summary>
    private const int MaxExponent = 1000;

    /// <summary>
    /// The canonical numeric text of <paramref name="text"/>, or <see langword="null"/> when it is not a JSON number
    /// (NaN, Infinity: to_jsonb then writes a string) or beyond what numeric accepts.
    /// </summary>
    public static string? Canonical(ReadOnlySpan<char> text)
    {
        var i = 0;
        var negative = false;
        if (i < text.Length && text[i] == '-')
        {
            negative = true;
            i++;
        }

        var intStart = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        var intDigits = text[intStart..i];
        if (intDigits.Length == 0 || (intDigits.Length > 1 && intDigits[0] == '0'))
        {
            return null; // JSON allows neither an empty integer part nor leading zeros
        }

        ReadOnlySpan<char> fracDigits = default;
        if (i < text.Length && text[i] == '.')
        {
            var fracStart = ++i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }

            fracDigits = text[fracStart..i];
            if (fracDigits.Length == 0)
            {
                return null;
            }
        }

        var exponent = 0;
        if (i < text.Length && (text[i] == 'e' || text[i] == 'E'))
        {
            i++;
            var expNegative = false;
            if (i < text.Length && (text[i] == '+' || text[i] == '-'))
            {
                expNegative = text[i] == '-';
                i++;
            }

            var expStart = i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                if (exponent > MaxExponent)
                {
                    return null;
                }

                exponent = (exponent * 10) + (text[i] - '0');
                i++;
            }

            if (i == expStart || exponent > MaxExponent)
            {
                return null;
            }

            exponent = expNegative ? -exponent : exponent;
        }

        if (i != text.Length)
        {
            return null;
        }

        // The digits, with the decimal point after `point` of them (point may lie outside the digits).
        var digits = string.Concat(intDigits, fracDigits);
        var point = intDigits.Length + exponent;
        var scale = Math.Max(0, fracDigits.Length - exponent);
        var sb = new StringBuilder(digits.Length + Math.Abs(exponent) + 3);
        // Integer part: digits before the point, without leading zeros.
        for (var d = 0; d < point; d++)
        {
            var c = d < digits.Length ? digits[d] : '0';
            if (sb.Length == 0 && c == '0')
            {
                continue;
            }

            sb.Append(c);
        }

        if (sb.Length == 0)
        {
            sb.Append('0');
        }

        if (scale > 0)
        {
            sb.Append('.');
            for (var d = point; d < point + scale; d++)
            {
                sb.Append(d >= 0 && d < digits.Length ? digits[d] : '0');
            }
        }

        var isZero = !digits.AsSpan().ContainsAnyExcept('0');
        return negative && !isZero ? "-" + sb : sb.ToString();
    }
}
