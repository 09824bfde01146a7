using System.Text;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// Properties of the pure pieces of a client request: the request parser, its id, its table names, its row filter. For
/// any message a client can send, the answer is a request or the documented refusal (invalid_json, invalid_message,
/// unknown_type), never another exception; and a compiled filter never
/// throws on any row (it runs on the router's thread, for every socket). <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class RequestProperties
{
    // As ClientRequest parses a message.
    private static readonly JsonDocumentOptions RequestOptions = new() { MaxDepth = 16 };
    private static readonly JsonDocumentOptions RowOptions = new() { MaxDepth = 4_096 };

    private static readonly string[] DocumentedCodes = ["invalid_json", "invalid_message", "unknown_type"];

    private static readonly Gen<string> Field = Gen.OneOf("type", "id", "tables", "operations", "filter", "since", "pad", "\\ud800", "");

    private static readonly Gen<string> TypeValue = Gen.OneOf("\"subscribe\"", "\"unsubscribe\"", "\"ping\"", "\"SUBSCRIBE\"", "\"\\ud800\"", "1", "null", "[]");

    /// <summary>Messages shaped like requests, with every field of any shape.</summary>
    private static readonly Gen<string> RequestLike = Gen.Select(TypeValue, Gen.Select(Field, HostileJson.Value(3)).Array[0, 6])
        .Select((type, fields) => "{\"type\":" + type + string.Concat(fields.Select(f => ",\"" + f.Item1 + "\":" + f.Item2)) + "}");

    private static readonly Gen<string> ValidSubscribe = Gen.Select(
            HostileJson.String.Array[1, 3],
            Gen.OneOf("null", "[\"INSERT\"]", "[\"UPDATE\",\"DELETE\",\"UPDATE\"]", "[\"MERGE\"]", "\"INSERT\"", "[]"),
            Gen.OneOf("null", "{\"name\":\"a\"}", "{\"id\":{\"gt\":1,\"lt\":1e400}}", "{\"name\":{\"in\":[\"\\ud800\"]}}"),
            Gen.OneOf("null", "5", "\"5\"", "-1", "1e400", "\"" + new string('9', 100) + "\"", "{}"))
        .Select((tables, operations, filter, since) =>
            $"{{\"type\":\"subscribe\",\"id\":\"r\",\"tables\":[{string.Join(",", tables)}],\"operations\":{operations},\"filter\":{filter},\"since\":{since}}}");

    /// <summary>Valid and near-valid messages with bytes flipped, cut or inserted anywhere.</summary>
    private static readonly Gen<byte[]> Mutated = Gen.Select(Gen.OneOf<string>(RequestLike, ValidSubscribe), Gen.Int[0, 10_000], Gen.Byte, Gen.Int[0, 2])
        .Select((text, at, value, how) =>
        {
            var bytes = Encoding.UTF8.GetBytes(text).ToList();
            var index = at % (bytes.Count + 1);
            switch (how)
            {
                case 0 when index < bytes.Count:
                    bytes[index] = value;
                    break;
                case 1:
                    bytes.Insert(index, value);
                    break;
                default:
                    bytes.RemoveRange(index, bytes.Count - index);
                    break;
            }

            return bytes.ToArray();
        });

    private static readonly Gen<byte[]> AnyMessage = Gen.Frequency<byte[]>(
        (3, RequestLike.Select(Encoding.UTF8.GetBytes)),
        (3, ValidSubscribe.Select(Encoding.UTF8.GetBytes)),
        (3, Mutated),
        (1, Gen.Byte.Array[0, 64]),
        (1, HostileJson.Value(4).Select(Encoding.UTF8.GetBytes)),
        (1, Gen.Int[1, 40].Select(depth => Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth)))));

    private static readonly Gen<string> Column = Gen.OneOf(Gen.OneOf("name", "id", "n", "tag", "doc"), JsonGen.AnyText);

    private static readonly Gen<string> Condition = Gen.Frequency(
        (3, JsonGen.Scalar),
        (3, Gen.Select(Gen.OneOf("eq", "neq", "lt", "lte", "gt", "gte", "like"), JsonGen.Scalar).Select((op, value) => $"{{\"{op}\":{value}}}")),
        (2, JsonGen.Scalar.Array[0, 5].Select(values => $"{{\"in\":[{string.Join(",", values)}]}}")),
        (1, JsonGen.Value));

    /// <summary>A filter: mostly column conditions as the protocol describes them, sometimes any JSON.</summary>
    private static readonly Gen<string> Filter = Gen.Frequency(
        (5, Gen.Select(Column, Condition).Array[1, 4].Select(JsonGen.Object)),
        (1, JsonGen.Value));

    private static readonly Gen<string> RowText = Gen.Select(Column, JsonGen.Value).Array[0, 5].Select(JsonGen.Object);

    /// <summary>Filters shaped like real ones from hostile JSON: operator names as keys, lone surrogate escapes, 1e400.</summary>
    private static readonly Gen<string> HostileFilter = Gen.Frequency<string>(
        (6, Gen.Select(HostileJson.Key, Gen.Frequency<string>(
                (3, HostileJson.Scalar),
                (3, Gen.Select(HostileJson.Key, Gen.Frequency<string>((3, HostileJson.Scalar), (1, HostileJson.Scalar.Array[0, 5].Select(v => "[" + string.Join(",", v) + "]")), (1, HostileJson.Value(2)))).Array[1, 3].Select(HostileJson.Object)),
                (1, HostileJson.Value(2))))
            .Array[0, 4].Select(HostileJson.Object)),
        (1, HostileJson.Value(3)));

    private static readonly Gen<string> HostileRow = Gen.Frequency<string>(
        (6, Gen.Select(HostileJson.Key, HostileJson.Value(2)).Array[0, 5].Select(HostileJson.Object)),
        (1, HostileJson.Value(2)));

    /// <summary>
    /// For any filter a client sends and any row the database (or a forged notification) brings: compiling gives a
    /// filter or an error message (no filter and no error only for a filter without any condition), and matching gives
    /// true or false, never an exception (it runs on the router's thread, for every socket).
    /// </summary>
    [Fact]
    public void RowFilter_AnyFilterAndAnyRow_CompilesOrRefusesAndNeverThrowsWhenMatching() =>
        Gen.Select(Gen.OneOf(Filter, HostileFilter), Gen.OneOf(RowText, HostileRow), Gen.OneOf(RowText, HostileRow), Gen.Enum<PgChangeOperation>()).Sample((filterText, dataText, oldText, operation) =>
        {
            JsonDocument filterDocument;
            try
            {
                filterDocument = JsonDocument.Parse(filterText, RequestOptions);
            }
            catch (JsonException)
            {
                return; // answered invalid_json before any filter is compiled
            }

            using (filterDocument)
            {
                var filter = RowFilter.Compile(filterDocument.RootElement, out var error);
                if (filter is null)
                {
                    if (error is null)
                    {
                        IsEmptyObject(filterDocument.RootElement).Should().BeTrue(filterText);
                    }

                    return; // refused with `error` (or an empty filter): the documented answer
                }

                error.Should().BeNull();
                using var data = JsonDocument.Parse(dataText, RowOptions);
                using var old = JsonDocument.Parse(oldText, RowOptions);
                var change = new PgChange(new PgTableName("public", "t"), operation, data.RootElement, old.RootElement, 1, 1, null, null, DateTimeOffset.UnixEpoch);
                _ = filter.Matches(change);
            }
        }, iter: 40_000);

    [Fact]
    public void RowFilter_StringWithLoneSurrogate_IsRefusedWithAnError()
    {
        foreach (var text in new[] { "{\"name\":\"\\ud800\"}", "{\"name\":{\"in\":[1,\"\\udc00\"]}}", "{\"name\":{\"lt\":\"x\\ud800\"}}", "{\"\\ud800\":1}" })
        {
            using var json = JsonDocument.Parse(text);
            RowFilter.Compile(json.RootElement, out var error).Should().BeNull(text);
            error.Should().NotBeNullOrWhiteSpace(text);
        }
    }

    [Fact]
    public void RowFilter_RowWithLoneSurrogate_DoesNotMatchAndDoesNotThrow()
    {
        using var filterJson = JsonDocument.Parse("{\"name\":{\"lt\":\"z\"},\"tag\":\"a\",\"n\":{\"in\":[1,\"a\",null]}}");
        var filter = RowFilter.Compile(filterJson.RootElement, out var error)!;
        error.Should().BeNull();
        using var row = JsonDocument.Parse("{\"name\":\"\\ud800\",\"tag\":\"\\udc00\",\"n\":\"\\ud800\"}");
        filter.Matches(new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, row.RootElement, null, 1, 1, null, null, DateTimeOffset.UnixEpoch))
            .Should().BeFalse();
    }

    [Theory]
    [InlineData("{\"n\":{\"gt\":1e400}}", "{\"n\":1}", false)]
    [InlineData("{\"n\":1e400}", "{\"n\":1e400}", true)]
    [InlineData("{\"n\":{\"lt\":2}}", "{\"n\":1e-400}", true)]
    [InlineData("{\"n\":{\"gte\":79228162514264337593543950336}}", "{\"n\":79228162514264337593543950337}", true)]
    [InlineData("{\"name\":\"\\u00e9\"}", "{\"name\":\"\u00e9\"}", true)]
    [InlineData("{\"name\":{\"neq\":\"a\"}}", "{\"name\":\"\\ud800\"}", true)]
    [InlineData("{\"name\":{\"lt\":\"b\"}}", "{\"name\":\"a\"}", true)]
    [InlineData("{\"name\":{\"lt\":\"b\"}}", "{\"name\":\"c\"}", false)]
    public void RowFilter_EdgeValues_CompareAsDocumented(string filterText, string rowText, bool expected)
    {
        using var filterJson = JsonDocument.Parse(filterText);
        var filter = RowFilter.Compile(filterJson.RootElement, out var error);
        error.Should().BeNull();
        using var row = JsonDocument.Parse(rowText);
        filter!.Matches(new PgChange(new PgTableName("public", "t"), PgChangeOperation.Insert, row.RootElement, null, 1, 1, null, null, DateTimeOffset.UnixEpoch))
            .Should().Be(expected);
    }

    /// <summary>
    /// An id is a string of up to 128 characters or an integer; anything else is refused. A value that cannot be read
    /// (a lone surrogate escape) may throw InvalidOperationException, which SocketSession answers with invalid_message.
    /// An accepted id must be writable into the answer.
    /// </summary>
    [Fact]
    public void RequestId_AnyIdValue_IsReadOrRefusedAndEchoesAsJson() =>
        JsonGen.Value.Sample(value =>
        {
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse("{\"type\":\"ping\",\"id\":" + value + "}", RequestOptions);
            }
            catch (JsonException)
            {
                return;
            }

            using (document)
            {
                bool accepted;
                RequestId id;
                try
                {
                    accepted = RequestId.TryRead(document.RootElement, out id);
                }
                catch (InvalidOperationException)
                {
                    return; // the documented path: SocketSession answers invalid_message
                }

                if (accepted)
                {
                    using var pong = JsonDocument.Parse(Frames.Pong(id));
                    pong.RootElement.GetProperty("type").GetString().Should().Be("pong");
                }
            }
        }, iter: 20_000);

    [Fact]
    public void TableName_AnyText_ParsesOrRefusesWithoutThrowing() =>
        JsonGen.AnyText.Sample(text =>
        {
            if (PgTableName.TryParse(text, out var table, out var error))
            {
                PgTableName.Parse(table.ToString()).Should().Be(table, "a parsed name must survive its own text form");
            }
            else
            {
                error.Should().NotBeNullOrEmpty();
            }
        }, iter: 20_000);

    [Fact]
    public void ClientRequest_AnyMessage_GivesARequestOrADocumentedError_NeverAnException()
    {
        AnyMessage.Sample(bytes =>
        {
            var request = ClientRequest.Parse(bytes, out var error);
            if (request is null)
            {
                error.Should().NotBeNull();
                error!.Code.Should().BeOneOf(DocumentedCodes);
                error.Message.Should().NotBeNullOrWhiteSpace();
            }
            else
            {
                error.Should().BeNull();
                if (request.Type != ClientRequestType.Ping)
                {
                    request.Tables.Should().NotBeEmpty().And.HaveCountLessThanOrEqualTo(ClientRequest.MaxTablesPerRequest);
                    request.Tables.Should().OnlyContain(t => t.Length > 0 && t.Length <= ClientRequest.MaxTableNameLength);
                }

                if (request.Type == ClientRequestType.Subscribe)
                {
                    request.Operations.Should().NotBeEmpty().And.OnlyHaveUniqueItems();
                    (request.Since is null || request.Since.Length <= 40).Should().BeTrue();
                }
            }
        }, iter: 50_000);
    }

    [Theory]
    [InlineData("{\"type\":\"subscribe\",\"tables\":[\"\\ud800\"]}")]
    [InlineData("{\"type\":\"subscribe\",\"tables\":[\"t\"],\"filter\":{\"name\":\"\\ud800\"}}")]
    [InlineData("{\"type\":\"ping\",\"id\":\"\\udc00\"}")]
    [InlineData("{\"\\ud800\":1,\"type\":\"ping\"}")]
    [InlineData("{\"type\":\"subscribe\",\"tables\":[\"t\"],\"operations\":[\"\\ud800\"]}")]
    public void ClientRequest_LoneSurrogateAnywhere_IsInvalidMessage(string message)
    {
        ClientRequest.Parse(Encoding.UTF8.GetBytes(message), out var error).Should().BeNull();
        error!.Code.Should().Be("invalid_message");
    }

    private static bool IsEmptyObject(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        foreach (var property in element.EnumerateObject())
        {
            // An object of operators with no operator at all ("name": {}) adds no condition either.
            if (property.Value.ValueKind != JsonValueKind.Object || property.Value.EnumerateObject().Any())
            {
                return false;
            }
        }

        return true;
    }
}
