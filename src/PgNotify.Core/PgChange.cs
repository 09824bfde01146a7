using System.Runtime.CompilerServices;
using System.Text.Json;

namespace PgNotify;

/// <summary>A committed change to one row of a watched table (or a TRUNCATE of the table).</summary>
public sealed class PgChange : PgChangeEvent
{
    /// <summary>Creates a change record.</summary>
    /// <param name="table">The table that changed.</param>
    /// <param name="operation">What happened.</param>
    /// <param name="data">The new row (INSERT, UPDATE), as a JSON object.</param>
    /// <param name="old">The old row (UPDATE, DELETE), as a JSON object.</param>
    /// <param name="transactionId">The PostgreSQL transaction id that made the change.</param>
    /// <param name="sequence">The change's number within its transaction, from 1.</param>
    /// <param name="timestamp">When the trigger ran, by the database's clock.</param>
    /// <param name="position">The change's position in the change log when lossless delivery is on.</param>
    /// <param name="receivedAt">When the listener received it.</param>
    public PgChange(
        PgTableName table,
        PgChangeOperation operation,
        JsonElement? data,
        JsonElement? old,
        long transactionId,
        long sequence,
        DateTimeOffset? timestamp,
        long? position,
        DateTimeOffset receivedAt)
        : base(receivedAt)
    {
        Table = table;
        Operation = operation;
        _data = data;
        _old = old;
        TransactionId = transactionId;
        Sequence = sequence;
        Timestamp = timestamp;
        Position = position;
    }

    /// <summary>
    /// A change whose rows are JSON text in UTF-8, as a notification or the change log carried them: they are parsed
    /// when <see cref="Data"/> or <see cref="Old"/> is first read, once, and never if only <see cref="DataUtf8"/> and
    /// <see cref="OldUtf8"/> are (a frame is built from those bytes). The text must be valid JSON objects.
    /// </summary>
    internal static PgChange FromUtf8(
        PgTableName table,
        PgChangeOperation operation,
        ReadOnlyMemory<byte> dataUtf8,
        ReadOnlyMemory<byte> oldUtf8,
        long transactionId,
        long sequence,
        DateTimeOffset? timestamp,
        long? position,
        DateTimeOffset receivedAt) =>
        new(table, operation, null, null, transactionId, sequence, timestamp, position, receivedAt) { _dataUtf8 = dataUtf8, _oldUtf8 = oldUtf8 };

    private readonly JsonElement? _data;
    private readonly JsonElement? _old;
    // Set once, by FromUtf8's initializer, before the change is shared.
    private ReadOnlyMemory<byte> _dataUtf8;
    private ReadOnlyMemory<byte> _oldUtf8;
    private StrongBox<JsonElement>? _parsedData;
    private StrongBox<JsonElement>? _parsedOld;

    /// <summary>The table that changed.</summary>
    public PgTableName Table { get; }

    /// <summary>What happened to the row.</summary>
    public PgChangeOperation Operation { get; }

    /// <summary>The row after the change (INSERT and UPDATE), without the table's excluded columns; otherwise <see langword="null"/>.</summary>
    /// <remarks>A change read from a notification is parsed into this element the first time it is read, once.</remarks>
    public JsonElement? Data => _dataUtf8.IsEmpty ? _data : Parsed(ref _parsedData, _dataUtf8);

    /// <summary>The row before the change (UPDATE and DELETE), without the table's excluded columns; otherwise <see langword="null"/>.</summary>
    /// <remarks>A change read from a notification is parsed into this element the first time it is read, once.</remarks>
    public JsonElement? Old => _oldUtf8.IsEmpty ? _old : Parsed(ref _parsedOld, _oldUtf8);

    /// <summary>
    /// <see cref="Data"/> as JSON text in UTF-8, as it was received (its whitespace and escapes as the database wrote
    /// them); empty when there is no new row. Reading it does not parse the row.
    /// </summary>
    public ReadOnlySpan<byte> DataUtf8 => _dataUtf8.IsEmpty ? RawText(_data) : _dataUtf8.Span;

    /// <summary>
    /// <see cref="Old"/> as JSON text in UTF-8, as it was received; empty when there is no old row. Reading it does not
    /// parse the row.
    /// </summary>
    public ReadOnlySpan<byte> OldUtf8 => _oldUtf8.IsEmpty ? RawText(_old) : _oldUtf8.Span;

    /// <summary>Whether <see cref="Data"/> or <see cref="Old"/> of a change read as text has been parsed (tests).</summary>
    internal bool RowsParsed => Volatile.Read(ref _parsedData) is not null || Volatile.Read(ref _parsedOld) is not null;

    /// <summary>The PostgreSQL transaction id (<c>pg_current_xact_id()</c>) of the transaction that made the change.</summary>
    public long TransactionId { get; }

    /// <summary>The change's number within its transaction, counting from 1.</summary>
    public long Sequence { get; }

    /// <summary>When the trigger ran (<c>clock_timestamp()</c> on the database server), if the payload carried it.</summary>
    public DateTimeOffset? Timestamp { get; }

    /// <summary>The change's position in the change log, when lossless delivery is enabled; otherwise <see langword="null"/>.</summary>
    public long? Position { get; }

    /// <summary>The row a filter should look at: <see cref="Data"/> when present, else <see cref="Old"/> (DELETE).</summary>
    public JsonElement? Row => Data ?? Old;

    private static JsonElement Parsed(ref StrongBox<JsonElement>? parsed, ReadOnlyMemory<byte> utf8)
    {
        if (Volatile.Read(ref parsed) is { } done)
        {
            return done.Value;
        }

        // The text was validated when the change was read; no depth limit, as for every row (PgChangePayload.MaxDepth).
        var reader = new Utf8JsonReader(utf8.Span, new JsonReaderOptions { MaxDepth = int.MaxValue });
        var box = new StrongBox<JsonElement>(JsonElement.ParseValue(ref reader));
        return (Interlocked.CompareExchange(ref parsed, box, null) ?? box).Value;
    }

    private static ReadOnlySpan<byte> RawText(JsonElement? row) =>
        row is { ValueKind: not JsonValueKind.Undefined } element
            ? System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(element)
            : default;

    /// <inheritdoc />
    public override string ToString() => $"{Operation} {Table} (xid {TransactionId}, #{Sequence})";
}
