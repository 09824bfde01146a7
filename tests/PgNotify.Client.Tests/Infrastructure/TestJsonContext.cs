using System.Text.Json.Serialization;

namespace PgNotify.Client.Tests.Infrastructure;

/// <summary>A row of the tests' tables.</summary>
public sealed record Item(int Id, string? Name);

/// <summary>Source-generated, as a Blazor WebAssembly app would use.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(Item))]
[JsonSerializable(typeof(System.Text.Json.JsonElement))]
public sealed partial class TestJsonContext : JsonSerializerContext;
