using System.Buffers;
using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Packs one table's snapshot rows into <c>snapshot</c> frames (pure): each frame holds as many whole rows as fit in
/// <see cref="MaxFrameBytes"/>, in the order given; a row that alone exceeds it goes in a frame of its own, as a change
/// of that row would. Each row is encoded exactly as a change frame's <c>data</c> (<see cref="Frames.Row"/>).
/// </summary>
internal sealed class SnapshotFrameBuilder
{
    /// <summary>The size budget of one frame: the most the socket's writer puts in one write (OutboxWriter).</summary>
    public const int DefaultMaxFrameBytes = 64 * 1024;

    private static readonly byte[] Tail = "]}"u8.ToArray();

    private readonly byte[] _header;
    private readonly ArrayBufferWriter<byte> _body = new(4096);
    private readonly ArrayBufferWriter<byte> _row = new(1024);
    private int _rows;

    public SnapshotFrameBuilder(RequestId id, PgTableName table, int maxFrameBytes = DefaultMaxFrameBytes)
    {
        _header = Frames.SnapshotHeader(id, table);
        MaxFrameBytes = maxFrameBytes;
    }

    public int MaxFrameBytes { get; }

    /// <summary>Rows in the frame being built.</summary>
    public int PendingRows => _rows;

    /// <summary>
    /// Adds a row. When it does not fit in the frame being built, that frame is returned complete (without the row),
    /// and the row starts the next one.
    /// </summary>
    public byte[]? Add(JsonElement row)
    {
        _row.ResetWrittenCount();
        Frames.Row(row, _row);
        byte[]? completed = null;
        if (_rows > 0 && _header.Length + _body.WrittenCount + 1 + _row.WrittenCount + Tail.Length > MaxFrameBytes)
        {
            completed = Flush();
        }

        if (_rows > 0)
        {
            _body.Write(","u8);
        }

        _body.Write(_row.WrittenSpan);
        _rows++;
        return completed;
    }

    /// <summary>The frame being built, complete, or <see langword="null"/> when it holds no row.</summary>
    public byte[]? Flush()
    {
        if (_rows == 0)
        {
            return null;
        }

        var frame = new byte[_header.Length + _body.WrittenCount + Tail.Length];
        _header.CopyTo(frame, 0);
        _body.WrittenSpan.CopyTo(frame.AsSpan(_header.Length));
        Tail.CopyTo(frame, _header.Length + _body.WrittenCount);
        _body.ResetWrittenCount();
        _rows = 0;
        return frame;
    }
}
