// The protocol's contract, shared by source: PgNotify.WebSockets (the server) and PgNotify.Client (the .NET client)
// both compile this one file (<Compile Include="../Shared/Protocol.cs" Link="Internal/Protocol.cs" />), so neither
// depends on the other's internals and the two cannot spell a word differently.
using System.Globalization;
using System.Text.Json;

namespace PgNotify;

/// <summary>
/// Every word of the WebSocket protocol (docs/protocol.md) in one place: request and frame types, error codes, resync
/// and unsubscribe reasons, and close codes. Nothing else spells them out; a test holds docs/protocol.md to them.
/// </summary>
internal static class Protocol
{
    /// <summary>The protocol version the <c>welcome</c> frame announces.</summary>
    public const int Version = 1;

    /// <summary>The <c>type</c> of requests a client sends (docs/protocol.md, "Client → server").</summary>
    public static class RequestTypes
    {
        public const string Subscribe = "subscribe";
        public const string Unsubscribe = "unsubscribe";
        public const string Ping = "ping";
    }

    /// <summary>The <c>type</c> of frames the server sends (docs/protocol.md, "Server frames").</summary>
    public static class FrameTypes
    {
        public const string Welcome = "welcome";
        public const string Pong = "pong";
        public const string Subscribed = "subscribed";
        public const string Unsubscribed = "unsubscribed";
        public const string Error = "error";
        public const string Resync = "resync";
        public const string Change = "change";

        /// <summary>A batch of a table's current rows, answering <c>"snapshot": true</c>.</summary>
        public const string Snapshot = "snapshot";

        /// <summary>The end of a table's snapshot: count, truncated, key (and position, lossless).</summary>
        public const string SnapshotEnd = "snapshot_end";
    }

    /// <summary>The <c>code</c> of error frames (docs/protocol.md, "Error codes").</summary>
    public static class ErrorCodes
    {
        public const string InvalidJson = "invalid_json";
        public const string InvalidMessage = "invalid_message";
        public const string UnknownType = "unknown_type";
        public const string UnknownTable = "unknown_table";
        public const string InvalidPosition = "invalid_position";
        public const string Forbidden = "forbidden";
        public const string TooManySubscriptions = "too_many_subscriptions";
        public const string RateLimited = "rate_limited";
        public const string Unavailable = "unavailable";
        public const string UnsupportedData = "unsupported_data";

        /// <summary>A table's snapshot could not be taken (no primary key, not readable, the database failed, too slow a reader).</summary>
        public const string SnapshotUnavailable = "snapshot_unavailable";
    }

    /// <summary>The <c>reason</c> of resync frames (docs/protocol.md, "resync").</summary>
    public static class ResyncReasons
    {
        public const string ListenerReconnected = "listener_reconnected";
        public const string ListenerOverflow = "listener_overflow";
        public const string PositionExpired = "position_expired";
        public const string SlowConsumer = "slow_consumer";

        /// <summary>The server failed to route a change (a bug, logged as 2110 or 2111): reload what you show.</summary>
        public const string ServerError = "server_error";
    }

    /// <summary>The <c>reason</c> of <c>unsubscribed</c> frames the server sends on its own (docs/protocol.md).</summary>
    public static class UnsubscribeReasons
    {
        /// <summary>Re-authorization (<c>ReauthorizeInterval</c>) refused a subscription the socket had.</summary>
        public const string Forbidden = "forbidden";
    }

    /// <summary>
    /// How a position goes over the wire (docs/protocol.md, "Positions"): a JSON integer up to
    /// <see cref="MaxJsonInteger"/>, above it a JSON string of its decimal digits, so that no JSON reader rounds it. A
    /// <c>since</c> is read in either form: an integer, or a string of 1 to <see cref="MaxDigits"/> ASCII digits, that
    /// fits a signed 64-bit integer.
    /// </summary>
    public static class Positions
    {
        /// <summary>2^53 − 1 (JavaScript's <c>Number.MAX_SAFE_INTEGER</c>): the largest position written as a JSON integer.</summary>
        public const long MaxJsonInteger = 9007199254740991;

        /// <summary>The most digits a position's text may have (long.MaxValue has 19).</summary>
        public const int MaxDigits = 19;

        /// <summary>Writes <paramref name="position"/> as the property <paramref name="name"/>, in the form the protocol gives it.</summary>
        public static void Write(Utf8JsonWriter writer, ReadOnlySpan<byte> name, long position)
        {
            if (position <= MaxJsonInteger)
            {
                writer.WriteNumber(name, position);
                return;
            }

            Span<byte> digits = stackalloc byte[MaxDigits];
            position.TryFormat(digits, out var length, default, CultureInfo.InvariantCulture);
            writer.WriteString(name, digits[..length]);
        }

        /// <summary>Reads a position's text (a JSON integer's, or a string's value): 1 to 19 ASCII digits that fit a long.</summary>
        public static bool TryParse(ReadOnlySpan<char> text, out long position)
        {
            position = 0;
            if (text.Length is 0 or > MaxDigits)
            {
                return false;
            }

            foreach (var c in text)
            {
                if (c is < '0' or > '9')
                {
                    return false;
                }
            }

            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out position);
        }

        /// <summary>Reads a position written in either form; false for anything else.</summary>
        public static bool TryRead(JsonElement element, out long position)
        {
            position = 0;
            switch (element.ValueKind)
            {
                case JsonValueKind.Number:
                    return element.TryGetInt64(out position) && position >= 0;
                case JsonValueKind.String:
                    try
                    {
                        return TryParse(element.GetString(), out position);
                    }
                    catch (InvalidOperationException)
                    {
                        return false; // an escaped lone surrogate: not digits
                    }

                default:
                    return false;
            }
        }
    }

    /// <summary>Close codes PgNotify sends besides the standard ones (docs/protocol.md, "Close codes").</summary>
    public static class CloseCodes
    {
        /// <summary>The authentication the socket was opened with has expired: reconnect with fresh credentials.</summary>
        public const int AuthenticationExpired = 4001;
    }
}
