using System.Text.Json.Serialization;

namespace BlazorLiveRows;

/// <summary>A row of the test's table.</summary>
public sealed record Item(int Id, string? Name);

/// <summary>Source-generated (Razor files cannot hold a source-generated context): no reflection in the browser.</summary>
[JsonSerializable(typeof(Item))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
public sealed partial class ItemJson : JsonSerializerContext;
