using System.Text;
using CsCheck;
using PgNotify.WebSockets.Internal;

namespace PgNotify.Tests.Hardening;

/// <summary>
/// The request parser for any message a client can send: a request or a documented error (invalid_json,
/// invalid_message, unknown_type), never an exception.
/// </summary>
public sealed class ClientRequestPropertyTests
{
    private static readonly string[] DocumentedCodes = ["invalid_json", "invalid_message", "unknown_type"];

    private static readonly Gen<string> Field = Gen.OneOf("type", "id", "tables", "operations", "filter", "since", "pad", "\\ud800", "");

    private static readonly Gen<string> TypeValue = Gen.OneOf("\"subscribe\"", "\"unsubscribe\"", "\"ping\"", "\"SUBSCRIBE\"", "\"\\ud800\"", "1", "null", "[]");

    /// <summary>Messages shaped like requests, with every field of any shape.</summary>
    private static readonly Gen<string> RequestLike = Gen.Select(TypeValue, Gen.Select(Field, RowFilterPropertyTests.Json(3)).Array[0, 6])
        .Select((type, fields) => "{\"type\":" + type + string.Concat(fields.Select(f => ",\"" + f.Item1 + "\":" + f.Item2)) + "}");

    private static readonly Gen<string> ValidSubscribe = Gen.Select(
            RowFilterPropertyTests.JsonString.Array[1, 3],
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
        (1, RowFilterPropertyTests.Json(4).Select(Encoding.UTF8.GetBytes)),
        (1, Gen.Int[1, 40].Select(depth => Encoding.UTF8.GetBytes(new string('[', depth) + new string(']', depth)))));

    [Fact]
    public void Parse_AnyMessage_GivesARequestOrADocumentedError_NeverAnException()
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
    public void Parse_LoneSurrogateAnywhere_IsInvalidMessage(string message)
    {
        ClientRequest.Parse(Encoding.UTF8.GetBytes(message), out var error).Should().BeNull();
        error!.Code.Should().Be("invalid_message");
    }
}
