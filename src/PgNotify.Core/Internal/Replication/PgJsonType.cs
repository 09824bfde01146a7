namespace PgNotify.Internal;

/// <summary>How <c>to_jsonb</c> renders a column type (PostgreSQL's json_categorize_type), after domains are resolved.</summary>
internal enum PgJsonKind
{
    /// <summary>The output text as a JSON string (text, varchar, uuid, bytea, date, time, enum, range, inet, ...).</summary>
    String,

    /// <summary>int2, int4, int8, float4, float8, numeric: a JSON number in numeric's text, or a string for NaN/Infinity.</summary>
    Number,

    /// <summary>bool: true or false.</summary>
    Bool,

    /// <summary>jsonb: embedded as it is (its output is already normalised).</summary>
    Jsonb,

    /// <summary>timestamp: ISO 8601 with a 'T'.</summary>
    Timestamp,

    /// <summary>timestamptz: ISO 8601 with a 'T' and a +HH:MM offset.</summary>
    TimestampTz,

    /// <summary>An array whose elements are converted by their own kind.</summary>
    Array,

    /// <summary>json, composite types and types with a cast to json: PostgreSQL itself renders the value (to_jsonb).</summary>
    Database,
}

/// <summary>A column type as the replication source converts it: its kind, element type and SQL name.</summary>
internal sealed record PgJsonType(uint Oid, PgJsonKind Kind, string SqlName, PgJsonType? Element = null, char Delimiter = ',')
{
    /// <summary>A type converted in the database (json, composite, or one with a cast to json), or an array of such.</summary>
    public bool NeedsDatabase => Kind == PgJsonKind.Database || (Element?.NeedsDatabase ?? false);
}
