using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace PgNotify.Client.Internal;

/// <summary>Source-generated serialisation for the client's own types: no reflection (trimming, Blazor WebAssembly).</summary>
[JsonSerializable(typeof(JsonObject))]
internal sealed partial class ClientJsonContext : JsonSerializerContext;
