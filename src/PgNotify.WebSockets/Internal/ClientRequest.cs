using System.Text.Json;

namespace PgNotify.WebSockets.Internal;

/// <summary>What a client asks for (docs/protocol.md, "Client messages").</summary>
internal enum ClientRequestType
{
    Ping,
    Subscribe,
    Unsubscribe,
}

/// <summary>A client message, read and checked: everything the socket needs to act on it.</summary>
/// <param name="Type">What the client asks for.</param>
/// <param name="Id">The request's <c>id</c>, echoed in the answer.</param>
/// <param name="Tables">The table names as the client wrote them (subscribe, unsubscribe).</param>
/// <param name="Operations">The operations to receive (subscribe).</param>
/// <param name="Filter">The compiled row filter, if any (subscribe).</param>
/// <param name="Since">The position to resume after, as the client wrote it (subscribe); checked by the socket.</param>
/// <param name="Snapshot">Whether the client asks for the tables' current rows first (subscribe).</param>
/// <param name="Limit">The most rows per table the client wants in the snapshot (subscribe with snapshot).</param>
internal sealed record ClientRequest(
    ClientRequestType Type,
    RequestId Id,
    IReadOnlyList<string> Tables,
    IReadOnlyList<PgChangeOperation> Operations,
    RowFilter? Filter,
    string? Since,
    bool Snapshot = false,
    long? Limit = null)
{
    public const int MaxTablesPerRequest = 100;
    public const int MaxTableNameLength = 200;

    public static readonly IReadOnlyList<PgChangeOperation> AllOperations =
        [PgChangeOperation.Insert, PgChangeOperation.Update, PgChangeOperation.Delete, PgChangeOperation.Truncate];

    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 16 };

    /// <summary>
    /// Reads one text message. For any bytes it gives a request or an error (code and message, with the request's id
    /// when it could be read) and never throws.
    /// </summary>
    public static ClientRequest? Parse(ReadOnlyMemory<byte> message, out ClientRequestError? error)
    {
        error = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(message, ParseOptions);
        }
        catch (JsonException ex)
        {
            error = new ClientRequestError(RequestId.None, Protocol.ErrorCodes.InvalidJson, "The message is not valid JSON: " + ex.Message);
            return null;
        }

        using (document)
        {
            try
            {
                return Read(document.RootElement, out error);
            }
            catch (InvalidOperationException ex)
            {
                // System.Text.Json refuses some valid JSON only when a name or value is read (an escaped lone surrogate).
                error = new ClientRequestError(RequestId.None, Protocol.ErrorCodes.InvalidMessage, "The message has a value that cannot be read: " + ex.Message);
                return null;
            }
        }
    }

    private static ClientRequest? Read(JsonElement root, out ClientRequestError? error)
    {
        error = null;
        if (root.ValueKind != JsonValueKind.Object)
        {
            error = new ClientRequestError(RequestId.None, Protocol.ErrorCodes.InvalidMessage, "A message must be a JSON object with a \"type\".");
            return null;
        }

        if (!RequestId.TryRead(root, out var id))
        {
            error = new ClientRequestError(RequestId.None, Protocol.ErrorCodes.InvalidMessage, $"\"id\" must be a string of at most {RequestId.MaxLength} characters or an integer.");
            return null;
        }

        if (!root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "A message must have a string \"type\": subscribe, unsubscribe or ping.");
            return null;
        }

        if (type.ValueEquals("ping"u8))
        {
            return new ClientRequest(ClientRequestType.Ping, id, [], [], null, null);
        }

        var subscribe = type.ValueEquals("subscribe"u8);
        if (!subscribe && !type.ValueEquals("unsubscribe"u8))
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.UnknownType, "Unknown message type: use subscribe, unsubscribe or ping.");
            return null;
        }

        if (ReadTables(root, id, out error) is not { } tables)
        {
            return null;
        }

        if (!subscribe)
        {
            return new ClientRequest(ClientRequestType.Unsubscribe, id, tables, [], null, null);
        }

        string? since = null;
        if (root.TryGetProperty("since", out var sinceElement) && sinceElement.ValueKind != JsonValueKind.Null)
        {
            since = sinceElement.ValueKind is JsonValueKind.Number or JsonValueKind.String ? RowFilter.TryReadString(sinceElement) ?? sinceElement.GetRawText() : "?";
            if (since.Length > 40)
            {
                since = "?"; // no position is that long; keeps a huge number out of the error path
            }
        }

        if (ReadOperations(root, id, out error) is not { } operations)
        {
            return null;
        }

        RowFilter? filter = null;
        if (root.TryGetProperty("filter", out var filterElement) && filterElement.ValueKind != JsonValueKind.Null)
        {
            filter = RowFilter.Compile(filterElement, out var filterError);
            if (filterError is not null)
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, filterError);
                return null;
            }
        }

        if (!ReadSnapshot(root, id, since is not null, out var snapshot, out var limit, out error))
        {
            return null;
        }

        return new ClientRequest(ClientRequestType.Subscribe, id, tables, operations, filter, since, snapshot, limit);
    }

    private static bool ReadSnapshot(JsonElement root, RequestId id, bool resuming, out bool snapshot, out long? limit, out ClientRequestError? error)
    {
        snapshot = false;
        limit = null;
        error = null;
        if (root.TryGetProperty("snapshot", out var element) && element.ValueKind != JsonValueKind.Null)
        {
            if (element.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"snapshot\" must be true or false.");
                return false;
            }

            snapshot = element.ValueKind == JsonValueKind.True;
        }

        if (root.TryGetProperty("limit", out var limitElement) && limitElement.ValueKind != JsonValueKind.Null)
        {
            if (!snapshot)
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"limit\" needs \"snapshot\": true.");
                return false;
            }

            if (limitElement.ValueKind != JsonValueKind.Number || !limitElement.TryGetInt64(out var value) || value < 1)
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage,
                    "\"limit\" must be a whole number from 1 to 9223372036854775807 (the server sends at most its MaxSnapshotRows whatever it is).");
                return false;
            }

            limit = value;
        }

        if (snapshot && resuming)
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"snapshot\" and \"since\" do not go together: a snapshot replaces resuming.");
            return false;
        }

        return true;
    }

    private static List<string>? ReadTables(JsonElement root, RequestId id, out ClientRequestError? error)
    {
        error = null;
        if (!root.TryGetProperty("tables", out var tables) || tables.ValueKind != JsonValueKind.Array || tables.GetArrayLength() == 0)
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"tables\" must be a non-empty array of table names.");
            return null;
        }

        if (tables.GetArrayLength() > MaxTablesPerRequest)
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, $"\"tables\" may name at most {MaxTablesPerRequest} tables.");
            return null;
        }

        var names = new List<string>();
        foreach (var table in tables.EnumerateArray())
        {
            if (table.ValueKind != JsonValueKind.String || RowFilter.TryReadString(table) is not { Length: > 0 and <= MaxTableNameLength } name)
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, $"\"tables\" must hold table names (strings of 1 to {MaxTableNameLength} characters).");
                return null;
            }

            names.Add(name);
        }

        return names;
    }

    private static List<PgChangeOperation>? ReadOperations(JsonElement root, RequestId id, out ClientRequestError? error)
    {
        error = null;
        if (!root.TryGetProperty("operations", out var ops) || ops.ValueKind == JsonValueKind.Null)
        {
            return [.. AllOperations];
        }

        if (ops.ValueKind != JsonValueKind.Array || ops.GetArrayLength() == 0)
        {
            error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"operations\" must be a non-empty array of INSERT, UPDATE, DELETE, TRUNCATE.");
            return null;
        }

        var operations = new List<PgChangeOperation>();
        foreach (var op in ops.EnumerateArray())
        {
            PgChangeOperation? parsed = op.ValueKind != JsonValueKind.String ? null
                : op.ValueEquals("INSERT"u8) ? PgChangeOperation.Insert
                : op.ValueEquals("UPDATE"u8) ? PgChangeOperation.Update
                : op.ValueEquals("DELETE"u8) ? PgChangeOperation.Delete
                : op.ValueEquals("TRUNCATE"u8) ? PgChangeOperation.Truncate
                : null;
            if (parsed is not { } operation)
            {
                error = new ClientRequestError(id, Protocol.ErrorCodes.InvalidMessage, "\"operations\" may only hold INSERT, UPDATE, DELETE, TRUNCATE.");
                return null;
            }

            if (!operations.Contains(operation))
            {
                operations.Add(operation);
            }
        }

        return operations;
    }
}

/// <summary>Why a client message was refused: the error frame's <c>id</c>, <c>code</c> and <c>message</c>.</summary>
internal sealed record ClientRequestError(RequestId Id, string Code, string Message);
