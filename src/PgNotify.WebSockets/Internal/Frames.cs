using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>Encodes the server's frames (docs/protocol.md). A change is encoded once and the bytes shared by every socket.</summary>
internal static class Frames
{
    private static readonly JsonEncodedText WelcomeType = JsonEncodedText.Encode(Protocol.FrameTypes.Welcome);
    private static readonly JsonEncodedText PongType = JsonEncodedText.Encode(Protocol.FrameTypes.Pong);
    private static readonly JsonEncodedText ErrorType = JsonEncodedText.Encode(Protocol.FrameTypes.Error);
    private static readonly JsonEncodedText ResyncType = JsonEncodedText.Encode(Protocol.FrameTypes.Resync);
    private static readonly JsonEncodedText ChangeType = JsonEncodedText.Encode(Protocol.FrameTypes.Change);
    private static readonly JsonEncodedText SnapshotType = JsonEncodedText.Encode(Protocol.FrameTypes.Snapshot);
    private static readonly JsonEncodedText SnapshotEndType = JsonEncodedText.Encode(Protocol.FrameTypes.SnapshotEnd);

    /// <summary>
    /// No depth limit: a row arrives at whatever depth PostgreSQL accepted (tens of thousands of levels with a large
    /// <c>max_stack_depth</c>), and <see cref="Utf8JsonWriter"/>'s default of 1000 would refuse to re-encode it.
    /// </summary>
    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true, MaxDepth = int.MaxValue };

    public static byte[] Welcome(bool lossless) => Write(w =>
    {
        w.WriteString("type"u8, WelcomeType);
        w.WriteNumber("protocol"u8, 1);
        w.WriteBoolean("lossless"u8, lossless);
    });

    public static byte[] Pong(RequestId id) => Write(w =>
    {
        w.WriteString("type"u8, PongType);
        id.WriteTo(w);
    });

    public static byte[] TablesAck(string type, RequestId id, IEnumerable<PgTableName> tables, string? reason = null, long? position = null) => Write(w =>
    {
        w.WriteString("type"u8, type);
        id.WriteTo(w);
        if (reason is not null)
        {
            w.WriteString("reason"u8, reason);
        }

        w.WriteStartArray("tables"u8);
        foreach (var table in tables)
        {
            w.WriteStringValue(table.ToString());
        }

        w.WriteEndArray();
        if (position is { } head)
        {
            Protocol.Positions.Write(w, "position"u8, head);
        }
    });

    /// <summary>An error frame; <paramref name="table"/> names the table it is about (<c>snapshot_unavailable</c>).</summary>
    public static byte[] Error(RequestId id, string code, string message, PgTableName? table = null) => Write(w =>
    {
        w.WriteString("type"u8, ErrorType);
        id.WriteTo(w);
        w.WriteString("code"u8, code);
        w.WriteString("message"u8, message);
        if (table is { } about)
        {
            w.WriteString("schema"u8, about.Schema);
            w.WriteString("table"u8, about.Name);
        }
    });

    /// <summary>The end of one table's snapshot (docs/protocol.md, "Snapshots").</summary>
    public static byte[] SnapshotEnd(RequestId id, PgTableName table, long count, bool truncated, IReadOnlyList<string> key, long? position) => Write(w =>
    {
        w.WriteString("type"u8, SnapshotEndType);
        id.WriteTo(w);
        w.WriteString("schema"u8, table.Schema);
        w.WriteString("table"u8, table.Name);
        w.WriteNumber("count"u8, count);
        w.WriteBoolean("truncated"u8, truncated);
        w.WriteStartArray("key"u8);
        foreach (var column in key)
        {
            w.WriteStringValue(column);
        }

        w.WriteEndArray();
        if (position is { } at)
        {
            Protocol.Positions.Write(w, "position"u8, at);
        }
    });

    /// <summary>
    /// The start of a snapshot frame, up to and including <c>"rows":[</c>; <see cref="SnapshotFrameBuilder"/> adds the
    /// rows and <c>]}</c>.
    /// </summary>
    public static byte[] SnapshotHeader(RequestId id, PgTableName table)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, SnapshotType);
            id.WriteTo(w);
            w.WriteString("schema"u8, table.Schema);
            w.WriteString("table"u8, table.Name);
            w.WriteStartArray("rows"u8);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Writes one row as a change frame's <c>data</c> holds it, byte for byte (the same writer options and the same
    /// fallback), into <paramref name="buffer"/>.
    /// </summary>
    public static void Row(JsonElement row, ArrayBufferWriter<byte> buffer)
    {
        var start = buffer.WrittenCount;
        try
        {
            using var w = new Utf8JsonWriter(buffer, WriterOptions);
            WriteRow(w, JsonMarshal.GetRawUtf8Value(row), raw: false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // See Change: a row System.Text.Json cannot re-encode goes as it came. Roll back what was written.
            buffer.ResetWrittenCount();
            if (start > 0)
            {
                throw new InvalidOperationException("Frames.Row needs an empty buffer.", ex);
            }

            using var w = new Utf8JsonWriter(buffer, WriterOptions);
            WriteRow(w, JsonMarshal.GetRawUtf8Value(row), raw: true);
        }
    }

    public static byte[] Resync(string reason, long? missed) => Write(w =>
    {
        w.WriteString("type"u8, ResyncType);
        w.WriteString("reason"u8, reason);
        if (missed is { } count)
        {
            w.WriteNumber("missed"u8, count);
        }
    });

    /// <summary>Encodes a change frame; without <paramref name="includeOld"/>, the frame has no <c>old</c> row.</summary>
    public static byte[] Change(PgChange change, ArrayBufferWriter<byte> buffer, bool includeOld = true)
    {
        try
        {
            return Change(change, buffer, includeOld, rawRows: false);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
        {
            // A row System.Text.Json cannot re-encode (an escaped lone surrogate from a forged notification): send it
            // as it came, which is valid JSON since it was parsed.
            return Change(change, buffer, includeOld, rawRows: true);
        }
    }

    private static byte[] Change(PgChange change, ArrayBufferWriter<byte> buffer, bool includeOld, bool rawRows)
    {
        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, ChangeType);
            w.WriteString("schema"u8, change.Table.Schema);
            w.WriteString("table"u8, change.Table.Name);
            w.WriteString("operation"u8, change.Operation switch
            {
                PgChangeOperation.Insert => "INSERT"u8,
                PgChangeOperation.Update => "UPDATE"u8,
                PgChangeOperation.Delete => "DELETE"u8,
                _ => "TRUNCATE"u8,
            });
            if (change.Position is { } position)
            {
                Protocol.Positions.Write(w, "position"u8, position);
            }

            w.WriteNumber("xid"u8, change.TransactionId);
            w.WriteNumber("seq"u8, change.Sequence);
            if (change.Timestamp is { } ts)
            {
                w.WriteString("ts"u8, ts);
            }

            // From the rows' text, not their parsed form: a change from a notification is never parsed to be sent.
            if (change.DataUtf8 is { IsEmpty: false } data)
            {
                w.WritePropertyName("data"u8);
                WriteRow(w, data, rawRows);
            }

            if (includeOld && change.OldUtf8 is { IsEmpty: false } old)
            {
                w.WritePropertyName("old"u8);
                WriteRow(w, old, rawRows);
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Writes a row compactly, as <see cref="JsonElement.WriteTo"/> would (<see cref="RowText"/>), or copies its JSON as
    /// it came: that never throws for content System.Text.Json cannot turn into a .NET string, such as an escaped lone
    /// surrogate.
    /// </summary>
    private static void WriteRow(Utf8JsonWriter writer, ReadOnlySpan<byte> row, bool raw)
    {
        if (raw)
        {
            writer.WriteRawValue(row, skipInputValidation: true);
        }
        else
        {
            RowText.Write(writer, row);
        }
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
