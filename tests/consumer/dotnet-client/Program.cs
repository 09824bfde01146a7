// The .NET client from the packed package, against the consumer app: subscribe, insert a row with psql, receive its
// change; then LiveRows (snapshot, source-generated row type) holds that row. Exit code 0 on success.
using System.Diagnostics;
using System.Text.Json.Serialization;
using PgNotify.Client;

var (url, database, root) = (new Uri(args[0]), args[1], args[2]);
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
await using var client = new PgNotifyClient(new PgNotifyClientOptions { Url = url });
await client.ConnectAsync(timeout.Token);

await foreach (var message in client.SubscribeAsync("items", cancellationToken: timeout.Token))
{
    if (message is PgSubscribedMessage)
    {
        using var psql = Process.Start("bash", [$"{root}/scripts/pg.sh", "psql", "-d", database, "-q", "-c", "INSERT INTO items (name) VALUES ('from the .NET client package')"]);
        await psql.WaitForExitAsync(timeout.Token);
    }
    else if (message is PgChangeMessage change && change.GetData(ItemsJson.Default.Item)?.Name == "from the .NET client package")
    {
        Console.Error.WriteLine($"dotnet-client: received {change.Operation} {change.Data}");
        break;
    }
}

await using var rows = new LiveRows<Item>(client, "items", ItemsJson.Default.Item);
await rows.StartAsync(timeout.Token);
if (!rows.Rows.Any(r => r.Name == "from the .NET client package"))
{
    Console.Error.WriteLine($"dotnet-client: LiveRows does not hold the row ({rows.Rows.Count} rows)");
    return 1;
}

Console.Error.WriteLine($"dotnet-client: LiveRows holds {rows.Rows.Count} row(s), status {rows.Status}");
return 0;

internal sealed record Item(int Id, string Name);

[JsonSerializable(typeof(Item))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class ItemsJson : JsonSerializerContext;
