using System.Text.Json;

namespace PgNotify.Tests.Snapshots;

/// <summary>
/// A client's materialised rows of one table, applied exactly as docs/protocol.md ("Snapshot, then changes") says: the
/// snapshot's rows replace the rows at its <c>snapshot_end</c>; INSERT and UPDATE upsert by key, an UPDATE whose new row
/// fails the filter removes it, DELETE removes, TRUNCATE empties. Also records anything the protocol rules out, among
/// them a change already in the rows it holds: with a <c>version</c> column that every write sets from one sequence,
/// the versions of one row only grow, so a change of a row no newer than the version held was delivered twice.
/// </summary>
public sealed class LiveRowsModel(string table, Func<JsonElement, bool> filter)
{
    private Dictionary<string, string>? _incoming;
    private string[] _key = [];

    /// <summary>Rows by key, each as compact JSON.</summary>
    public Dictionary<string, string> Rows { get; private set; } = [];

    /// <summary>True between a snapshot request's acknowledgment and its <c>snapshot_end</c>.</summary>
    public bool SnapshotPending => _incoming is not null;

    public bool HasSnapshot { get; private set; }

    public int Snapshots { get; private set; }

    public int Resyncs { get; private set; }

    public List<string> Violations { get; } = [];

    /// <summary>Applies one frame; returns true when it was a <c>resync</c> (the client must take a new snapshot).</summary>
    public bool Apply(JsonElement frame)
    {
        var type = frame.GetProperty("type").GetString();
        switch (type)
        {
            case "resync":
                Resyncs++;
                return true;
            case "snapshot" when Is(frame):
                if (_incoming is null)
                {
                    Violations.Add("snapshot frame outside a snapshot: " + frame);
                    break;
                }

                foreach (var row in frame.GetProperty("rows").EnumerateArray())
                {
                    _incoming[KeyOf(row, null)] = Canonical(row);
                }

                break;
            case "snapshot_end" when Is(frame):
                _key = [.. frame.GetProperty("key").EnumerateArray().Select(k => k.GetString()!)];
                var rebuilt = new Dictionary<string, string>();
                foreach (var row in (_incoming ?? []).Values)
                {
                    using var document = JsonDocument.Parse(row);
                    rebuilt[KeyOf(document.RootElement, _key)] = row;
                }

                if (frame.GetProperty("truncated").GetBoolean())
                {
                    Violations.Add("truncated snapshot: " + frame);
                }

                Rows = rebuilt;
                _incoming = null;
                HasSnapshot = true;
                Snapshots++;
                break;
            case "error":
                Violations.Add("error: " + frame);
                _incoming = null;
                return frame.GetProperty("code").GetString() == "snapshot_unavailable";
            case "change" when Is(frame):
                ApplyChange(frame);
                break;
        }

        return false;
    }

    /// <summary>The acknowledgment of a snapshot request arrived: its rows follow.</summary>
    public void BeginSnapshot() => _incoming = [];

    private void ApplyChange(JsonElement change)
    {
        if (_incoming is not null)
        {
            Violations.Add("change between subscribed and snapshot_end: " + change);
        }

        if (!HasSnapshot)
        {
            return; // before the first snapshot the client holds nothing
        }

        var operation = change.GetProperty("operation").GetString();
        var row = operation == "DELETE" ? change.GetProperty("old") : operation == "TRUNCATE" ? default : change.GetProperty("data");
        if (row.ValueKind == JsonValueKind.Object && row.TryGetProperty("version", out var version)
            && Rows.TryGetValue(KeyOf(row, _key), out var held) && JsonDocument.Parse(held).RootElement.GetProperty("version").GetInt64() is var heldVersion
            && (operation == "DELETE" ? version.GetInt64() < heldVersion : version.GetInt64() <= heldVersion))
        {
            Violations.Add($"a change the rows already hold (version {version.GetInt64()}, held {heldVersion}): {change}");
        }

        switch (operation)
        {
            case "INSERT":
            case "UPDATE":
                var data = change.GetProperty("data");
                if (filter(data))
                {
                    Rows[KeyOf(data, _key)] = Canonical(data);
                }
                else
                {
                    Rows.Remove(KeyOf(data, _key));
                }

                break;
            case "DELETE":
                Rows.Remove(KeyOf(change.GetProperty("old"), _key));
                break;
            case "TRUNCATE":
                Rows.Clear();
                break;
        }
    }

    private bool Is(JsonElement frame) => frame.TryGetProperty("table", out var t) && t.GetString() == table;

    private static string KeyOf(JsonElement row, string[]? key) =>
        string.Join("|", (key is { Length: > 0 } ? key : ["id"]).Select(k => row.GetProperty(k).GetRawText()));

    /// <summary>A row as compact JSON, the same for a frame's row and for <c>to_jsonb(row)::text</c>.</summary>
    public static string Canonical(JsonElement row) => JsonSerializer.Serialize(row);
}
