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
        Data = data;
        Old = old;
        TransactionId = transactionId;
        Sequence = sequence;
        Timestamp = timestamp;
        Position = position;
    }

    /// <summary>The table that changed.</summary>
    public PgTableName Table { get; }

    /// <summary>What happened to the row.</summary>
    public PgChangeOperation Operation { get; }

    /// <summary>The row after the change (INSERT and UPDATE), without the table's excluded columns; otherwise <see langword="null"/>.</summary>
    public JsonElement? Data { get; }

    /// <summary>The row before the change (UPDATE and DELETE), without the table's excluded columns; otherwise <see langword="null"/>.</summary>
    public JsonElement? Old { get; }

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

    /// <inheritdoc />
    public override string ToString() => $"{Operation} {Table} (xid {TransactionId}, #{Sequence})";
}
