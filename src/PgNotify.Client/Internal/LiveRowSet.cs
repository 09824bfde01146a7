using System.Text.Json;

namespace PgNotify.Client.Internal;

/// <summary>
/// The pure part of live rows: rows by primary key, built from a snapshot and kept by applying changes in order
/// (issue #13: INSERT and UPDATE upsert by key, an UPDATE whose new row leaves the filter removes it, DELETE removes,
/// TRUNCATE empties). Rows that cannot be keyed or converted are left out and reported, never thrown. Not thread-safe.
/// </summary>
internal sealed class LiveRowSet<TRow>(Func<JsonElement, TRow> convert, RowMatcher filter, Action<Exception> onUnreadable)
{
    private Dictionary<string, TRow> _rows = new(StringComparer.Ordinal);
    private List<JsonElement>? _staged;
    private List<PgChangeMessage>? _stagedChanges;
    private IReadOnlyList<string> _key = [];

    public IEnumerable<TRow> Values => _rows.Values;

    public int Count => _rows.Count;

    public bool Truncated { get; private set; }

    /// <summary>Whether a snapshot is being received (changes are held until its end).</summary>
    public bool Staging => _staged is not null;

    public void BeginSnapshot()
    {
        _staged = [];
        _stagedChanges = [];
    }

    public void AddSnapshotRows(IReadOnlyList<JsonElement> rows) => _staged?.AddRange(rows);

    /// <summary>Replaces the rows with the snapshot's, then applies the changes that came during it.</summary>
    /// <returns>Whether a snapshot was being received.</returns>
    public bool EndSnapshot(PgSnapshotEndMessage end)
    {
        if (_staged is null || _stagedChanges is null)
        {
            return false;
        }

        _key = end.Key;
        Truncated = end.Truncated;
        _rows = new Dictionary<string, TRow>(_staged.Count, StringComparer.Ordinal);
        foreach (var row in _staged)
        {
            Upsert(row);
        }

        var changes = _stagedChanges;
        _staged = null;
        _stagedChanges = null;
        foreach (var change in changes)
        {
            if (change.Position is not { } position || end.Position is not { } held || position > held)
            {
                Apply(change); // with positions, one the snapshot already holds is skipped
            }
        }

        return true;
    }

    /// <summary>Applies one change (or holds it while a snapshot is being received).</summary>
    public void Apply(PgChangeMessage change)
    {
        if (_stagedChanges is not null)
        {
            _stagedChanges.Add(change);
            return;
        }

        switch (change.Operation)
        {
            case PgChangeOperations.Insert when change.Data is { } row:
                Upsert(row);
                break;
            case PgChangeOperations.Update when change.Data is { } row:
                if (change.Old is { } old && KeyOf(old) is { } oldKey && oldKey != KeyOf(row))
                {
                    _rows.Remove(oldKey);
                }

                if (filter.Matches(row))
                {
                    Upsert(row);
                }
                else if (KeyOf(row) is { } leaving)
                {
                    _rows.Remove(leaving);
                }

                break;
            case PgChangeOperations.Delete when change.Old is { } row:
                if (KeyOf(row) is { } key)
                {
                    _rows.Remove(key);
                }

                break;
            case PgChangeOperations.Truncate:
                _rows.Clear();
                break;
        }
    }

    private void Upsert(JsonElement row)
    {
        if (KeyOf(row) is not { } key)
        {
            onUnreadable(new JsonException($"A row has no value for its key column(s) {string.Join(", ", _key)}."));
            return;
        }

        try
        {
            _rows[key] = convert(row);
        }
        catch (Exception ex) when (ex is JsonException or NotSupportedException or InvalidOperationException or FormatException or ArgumentException or OverflowException or InsufficientExecutionStackException)
        {
            _rows.Remove(key); // its old value is out of date: leave the row out rather than show a wrong one
            onUnreadable(ex);
        }
    }

    /// <summary>The key columns' JSON text, joined; null when the row lacks one (or before the key is known).</summary>
    private string? KeyOf(JsonElement row)
    {
        if (_key.Count == 0 || row.ValueKind != JsonValueKind.Object)
        {
            return null;
        }

        try
        {
            var parts = new string[_key.Count];
            for (var i = 0; i < parts.Length; i++)
            {
                if (!row.TryGetProperty(_key[i], out var cell))
                {
                    return null;
                }

                parts[i] = cell.GetRawText();
            }

            return string.Join('\u001f', parts);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
