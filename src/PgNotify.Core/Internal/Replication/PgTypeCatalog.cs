using System.Collections.Concurrent;
using Npgsql;

namespace PgNotify.Internal;

/// <summary>
/// Resolves the type OIDs of replicated columns to <see cref="PgJsonType"/>s (domains to their base type, arrays to
/// their element type) with a catalog query on the side connection, and caches them; renders values of types that only
/// the database can render (<see cref="PgJsonKind.Database"/>) with <c>to_jsonb</c>. Called on the dispatcher loop.
/// </summary>
internal sealed class PgTypeCatalog(PgNotifyConnections connections)
{
    private const uint FirstNormalObjectId = 16384;

    private readonly ConcurrentDictionary<uint, PgJsonType> _types = new();

    /// <summary>Values rendered by the database (json, composite types, BC timestamps, unparsable arrays).</summary>
    public long DatabaseRenders => Interlocked.Read(ref _databaseRenders);

    private long _databaseRenders;

    /// <summary>The type for <paramref name="oid"/>, looked up once.</summary>
    public async ValueTask<PgJsonType> GetAsync(uint oid, CancellationToken cancellationToken)
    {
        if (_types.TryGetValue(oid, out var known))
        {
            return known;
        }

        await LookUpAsync([oid], cancellationToken).ConfigureAwait(false);
        return _types[oid];
    }

    /// <summary>Looks up the types not known yet among <paramref name="oids"/> (with their base and element types), one query per level.</summary>
    private async Task LookUpAsync(IEnumerable<uint> oids, CancellationToken cancellationToken)
    {
        var rows = new Dictionary<uint, TypeRow>();
        var asked = oids.Where(o => !_types.ContainsKey(o)).Distinct().ToList();
        var wanted = new HashSet<uint>(asked);
        while (wanted.Count > 0)
        {
            foreach (var row in await QueryAsync(wanted, cancellationToken).ConfigureAwait(false))
            {
                rows[row.Oid] = row;
            }

            var missing = wanted.Where(w => !rows.ContainsKey(w)).ToList();
            if (missing.Count > 0)
            {
                throw new InvalidOperationException($"PgNotify found no type with OID {missing[0]} in pg_type.");
            }

            wanted = [.. rows.Values.SelectMany(r => new[] { r.BaseType, r.IsArray ? r.Element : 0 }).Where(o => o != 0 && !rows.ContainsKey(o) && !_types.ContainsKey(o))];
        }

        foreach (var oid in asked)
        {
            Resolve(oid, rows, 0);
        }
    }

    private PgJsonType Resolve(uint oid, Dictionary<uint, TypeRow> rows, int depth)
    {
        if (_types.TryGetValue(oid, out var known))
        {
            return known;
        }

        var row = rows[oid];
        PgJsonType type;
        if (row.Kind == 'd' && row.BaseType != 0 && depth < 64)
        {
            type = Resolve(row.BaseType, rows, depth + 1) with { Oid = oid }; // a domain renders as its base type
        }
        else if (row.IsArray && row.Element != 0 && depth < 64)
        {
            type = new PgJsonType(oid, PgJsonKind.Array, row.SqlName, Resolve(row.Element, rows, depth + 1), row.Delimiter);
        }
        else
        {
            type = new PgJsonType(oid, KindOf(row), row.SqlName);
        }

        return _types.GetOrAdd(oid, type);
    }

    private static PgJsonKind KindOf(TypeRow row) => row.Oid switch
    {
        16 => PgJsonKind.Bool,
        20 or 21 or 23 or 700 or 701 or 1700 => PgJsonKind.Number,
        3802 => PgJsonKind.Jsonb,
        114 => PgJsonKind.Database, // json: to_jsonb normalises it as jsonb does (key order, duplicate keys, numbers)
        1114 => PgJsonKind.Timestamp,
        1184 => PgJsonKind.TimestampTz,
        _ when row.Kind is 'c' or 'p' => PgJsonKind.Database, // composite (and record): an object
        _ when row.Oid >= FirstNormalObjectId && row.HasJsonCast => PgJsonKind.Database,
        _ => PgJsonKind.String,
    };

    /// <summary>Whether the type <paramref name="oid"/> is looked up already.</summary>
    public bool Knows(uint oid) => _types.ContainsKey(oid);

    /// <summary>
    /// Looks up the column types of <paramref name="tables"/> before their first change: otherwise the first
    /// transaction after each start of the stream waits for these queries (about 70 ms here) and every change behind
    /// it waits too. Tables that do not exist are skipped.
    /// </summary>
    public async Task WarmAsync(IReadOnlyCollection<PgTableName> tables, CancellationToken cancellationToken)
    {
        if (tables.Count == 0)
        {
            return;
        }

        await using var command = connections.Side.CreateCommand(
            """
            SELECT DISTINCT a.atttypid FROM pg_attribute a
            WHERE a.attrelid IN (SELECT to_regclass(format('%I.%I', t.s, t.n)) FROM unnest($1::text[], $2::text[]) AS t(s, n))
              AND a.attnum > 0 AND NOT a.attisdropped
            """);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. tables.Select(t => t.Schema)] });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. tables.Select(t => t.Name)] });
        var oids = new List<uint>();
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                oids.Add(reader.GetFieldValue<uint>(0));
            }
        }

        await LookUpAsync(oids, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Renders <paramref name="text"/> as a value of <paramref name="type"/> with PostgreSQL's own <c>to_jsonb</c>.</summary>
    public async Task<string> RenderInDatabaseAsync(PgJsonType type, string text, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _databaseRenders);
        // The type name comes from format_type(), which quotes what needs quoting; the value travels as a parameter.
        await using var command = connections.Side.CreateCommand($"SELECT to_jsonb($1::text::{type.SqlName})::text");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = text });
        return (string)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private async Task<List<TypeRow>> QueryAsync(IEnumerable<uint> oids, CancellationToken cancellationToken)
    {
        await using var command = connections.Side.CreateCommand(
            """
            SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typdelim::text, format_type(t.oid, NULL),
                   t.typsubscript = 'array_subscript_handler'::regproc,
                   EXISTS (SELECT 1 FROM pg_cast c WHERE c.castsource = t.oid AND c.casttarget = 'json'::regtype)
            FROM pg_type t WHERE t.oid = ANY ($1)
            """);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. oids.Select(o => (long)o)] });
        var result = new List<TypeRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            result.Add(new TypeRow(
                reader.GetFieldValue<uint>(0), reader.GetChar(1), reader.GetFieldValue<uint>(2), reader.GetFieldValue<uint>(3),
                reader.GetString(4) is [var d, ..] ? d : ',', reader.GetString(5), reader.GetBoolean(6), reader.GetBoolean(7)));
        }

        return result;
    }

    private sealed record TypeRow(uint Oid, char Kind, uint BaseType, uint Element, char Delimiter, string SqlName, bool IsArray, bool HasJsonCast);
}
