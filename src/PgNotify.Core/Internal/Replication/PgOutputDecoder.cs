using System.Text.Json;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;

namespace PgNotify.Internal;

/// <summary>
/// Turns pgoutput messages into <see cref="PgChange"/>s: keeps the relations it was told about, numbers the changes of
/// each transaction (<see cref="ReplicationPosition"/>), reads each tuple's text values, fills unchanged TOASTed values
/// of the new row from the old row (sent whole with <c>REPLICA IDENTITY FULL</c>), builds the row JSON
/// (<see cref="PgRowJson"/>) without excluded columns and widens transaction ids to 64 bits (<see cref="TransactionIdWidener"/>). One per replication connection; runs on the dispatcher loop.
/// </summary>
internal sealed class PgOutputDecoder(
    PgTypeCatalog catalog, IReadOnlyDictionary<PgTableName, string[]> excluded, TransactionIdWidener transactionIds, TimeProvider time)
{
    private readonly Dictionary<uint, Relation> _relations = [];
    private ulong _commitLsn;
    private long _sequence;
    private long _xid;
    private DateTimeOffset? _commitTime;

    /// <summary>Unchanged TOASTed values that could not be filled in (no old row: the table's replica identity is not FULL).</summary>
    public long UnfilledToastValues { get; private set; }

    /// <summary>The commit LSN of the transaction being decoded.</summary>
    public ulong CommitLsn => _commitLsn;

    /// <summary>
    /// Decodes one message into <paramref name="changes"/>. Returns the LSN to confirm once they are delivered (a
    /// commit's end), or <see langword="null"/>.
    /// </summary>
    public async ValueTask<ulong?> DecodeAsync(PgOutputReplicationMessage message, List<PgChange> changes, CancellationToken cancellationToken)
    {
        switch (message)
        {
            case BeginMessage begin:
                _commitLsn = (ulong)begin.TransactionFinalLsn;
                _sequence = 0;
                _xid = transactionIds.Widen(begin.TransactionXid); // 64-bit, as the trigger's pg_current_xact_id()
                _commitTime = new DateTimeOffset(DateTime.SpecifyKind(begin.TransactionCommitTimestamp, DateTimeKind.Utc));
                return null;
            case RelationMessage relation:
                await RememberAsync(relation, cancellationToken).ConfigureAwait(false);
                return null;
            case InsertMessage insert:
                {
                    var relation = _relations[insert.Relation.RelationId];
                    var row = await ReadAsync(insert.NewRow, cancellationToken).ConfigureAwait(false);
                    changes.Add(await ChangeAsync(relation, PgChangeOperation.Insert, row, null, cancellationToken).ConfigureAwait(false));
                    return null;
                }

            case UpdateMessage update:
                {
                    var relation = _relations[update.Relation.RelationId];
                    var oldTuple = update switch
                    {
                        FullUpdateMessage full => full.OldRow,
                        IndexUpdateMessage index => index.Key,
                        _ => null,
                    };
                    var old = oldTuple is null ? null : await ReadAsync(oldTuple, cancellationToken).ConfigureAwait(false);
                    var row = await ReadAsync(update.NewRow, cancellationToken).ConfigureAwait(false);
                    FillUnchanged(row, update is FullUpdateMessage ? old : null);
                    changes.Add(await ChangeAsync(relation, PgChangeOperation.Update, row, old, cancellationToken).ConfigureAwait(false));
                    return null;
                }

            case DeleteMessage delete:
                {
                    var relation = _relations[delete.Relation.RelationId];
                    var oldTuple = delete switch
                    {
                        FullDeleteMessage full => full.OldRow,
                        KeyDeleteMessage key => key.Key,
                        _ => null,
                    };
                    var old = oldTuple is null ? null : await ReadAsync(oldTuple, cancellationToken).ConfigureAwait(false);
                    changes.Add(await ChangeAsync(relation, PgChangeOperation.Delete, null, old, cancellationToken).ConfigureAwait(false));
                    return null;
                }

            case TruncateMessage truncate:
                foreach (var relation in truncate.Relations)
                {
                    changes.Add(Change(_relations[relation.RelationId].Table, PgChangeOperation.Truncate, default, default));
                }

                return null;
            case CommitMessage commit:
                return (ulong)commit.TransactionEndLsn;
            default:
                return null; // type, origin and logical decoding messages carry no change
        }
    }

    private async Task RememberAsync(RelationMessage message, CancellationToken cancellationToken)
    {
        var table = new PgTableName(message.Namespace, message.RelationName);
        var skip = excluded.TryGetValue(table, out var names) ? names : [];
        var columns = new List<ReplicatedColumn>(message.Columns.Count);
        foreach (var column in message.Columns)
        {
            var type = await catalog.GetAsync(column.DataTypeId, cancellationToken).ConfigureAwait(false);
            columns.Add(new ReplicatedColumn(column.ColumnName, type, skip.Contains(column.ColumnName, StringComparer.Ordinal)));
        }

        _relations[message.RelationId] = new Relation(table, columns, PgRowJson.KeyOrder(columns));
    }

    private static async Task<RowText> ReadAsync(ReplicationTuple tuple, CancellationToken cancellationToken)
    {
        var values = new string?[tuple.NumColumns];
        var unchanged = new bool[tuple.NumColumns];
        var i = 0;
        await foreach (var value in tuple.ConfigureAwait(false))
        {
            switch (value.Kind)
            {
                case TupleDataKind.Null:
                    break;
                case TupleDataKind.UnchangedToastedValue:
                    unchanged[i] = true;
                    break;
                default:
                    values[i] = await value.Get<string>(cancellationToken).ConfigureAwait(false);
                    break;
            }

            i++;
        }

        return new RowText(values, unchanged);
    }

    private void FillUnchanged(RowText row, RowText? old)
    {
        for (var i = 0; i < row.Values.Length; i++)
        {
            if (!row.Unchanged[i])
            {
                continue;
            }

            if (old is not null && !old.Unchanged[i])
            {
                row.Values[i] = old.Values[i];
            }
            else
            {
                UnfilledToastValues++; // left NULL; reported by the source (event 1218)
            }
        }
    }

    private async Task<PgChange> ChangeAsync(Relation relation, PgChangeOperation operation, RowText? row, RowText? old, CancellationToken cancellationToken)
    {
        var sequence = ++_sequence; // numbered first: a change that fails to convert still holds its place
        var data = row is null ? default : await PgRowJson.BuildAsync(relation.Columns, relation.KeyOrder, row.Values, catalog, cancellationToken).ConfigureAwait(false);
        var oldJson = old is null ? default : await PgRowJson.BuildAsync(relation.Columns, relation.KeyOrder, old.Values, catalog, cancellationToken).ConfigureAwait(false);
        return Change(relation.Table, operation, data, oldJson, sequence);
    }

    private PgChange Change(PgTableName table, PgChangeOperation operation, ReadOnlyMemory<byte> data, ReadOnlyMemory<byte> old, long sequence = 0)
    {
        if (sequence == 0)
        {
            sequence = ++_sequence;
        }

        var position = ReplicationPosition.Of(_commitLsn, sequence);
        return PgChange.FromUtf8(table, operation, data, old, _xid, sequence, _commitTime, position, time.GetUtcNow());
    }

    private sealed record Relation(PgTableName Table, List<ReplicatedColumn> Columns, int[] KeyOrder);

    private sealed record RowText(string?[] Values, bool[] Unchanged);
}
