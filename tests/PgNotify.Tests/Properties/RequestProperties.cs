using System.Buffers;
using System.Text.Json;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Properties;

/// <summary>
/// Properties of the pure pieces of a client request: its id, its table names, its row filter. For any JSON a client
/// can send, the answer is a result or the documented refusal, never another exception; and a compiled filter never
/// throws on any row (it runs on the router's thread, for every socket). <c>CsCheck_Seed=&lt;seed&gt;</c> replays a failure.
/// </summary>
public sealed class RequestProperties
{
    // As SocketSession parses a message.
    private static readonly JsonDocumentOptions RequestOptions = new() { MaxDepth = 16 };
    private static readonly JsonDocumentOptions RowOptions = new() { MaxDepth = 4_096 };

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

    [Fact]
    public void RowFilter_AnyFilterAndAnyRow_CompilesOrRefusesAndNeverThrowsWhenMatching() =>
        Gen.Select(Filter, RowText, RowText, Gen.Enum<PgChangeOperation>()).Sample((filterText, dataText, oldText, operation) =>
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
                RowFilter? filter;
                string? error;
                try
                {
                    filter = RowFilter.Compile(filterDocument.RootElement, out error);
                }
                catch (InvalidOperationException)
                {
                    return; // a column name that cannot be read: SocketSession answers invalid_message
                }

                if (filter is null)
                {
                    return; // refused with `error` (or an empty filter): the documented answer
                }

                error.Should().BeNull();
                using var data = JsonDocument.Parse(dataText, RowOptions);
                using var old = JsonDocument.Parse(oldText, RowOptions);
                var change = new PgChange(new PgTableName("public", "t"), operation, data.RootElement, old.RootElement, 1, 1, null, null, DateTimeOffset.UnixEpoch);
                _ = filter.Matches(change);
            }
        }, iter: 20_000);

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
}
