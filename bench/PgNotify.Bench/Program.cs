using System.Globalization;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Npgsql;
using PgNotify.Bench;

// PgNotify.Bench: drives the bench host (bench/PgNotify.Bench.Host) and PostgreSQL; see docs/benchmarks.md.
//
//   PgNotify.Bench [--scenarios L,F,S,I,D,B,I40k,...] [--modes floor,baseline,pgnotify] [--seconds 12] [--out bench/results]
//                  [--clients epoll|async] [--instances N]
//   PgNotify.Bench write ...   (internal: the writer child process)
if (args.Length > 0 && args[0] == "write")
{
    return await Writer.RunAsync(
        Arg("--connection")!, int.Parse(Arg("--writers")!), double.Parse(Arg("--rate")!), long.Parse(Arg("--rows")!),
        TimeSpan.FromSeconds(double.Parse(Arg("--seconds")!)), int.Parse(Arg("--batch")!), int.Parse(Arg("--pad")!));
}

var connectionString = Arg("--connection") ?? "Host=127.0.0.1;Port=54329;Username=postgres;Database=postgres";
var seconds = double.Parse(Arg("--seconds") ?? "12");
var scenarioNames = (Arg("--scenarios") ?? "L,F,S,I,B,D").Split(',');
var modes = (Arg("--modes") ?? "floor,baseline,pgnotify").Split(',');
var outDir = Arg("--out") ?? Path.Combine(AppContext.BaseDirectory, "results");
var hostDll = Arg("--host") ?? throw new ArgumentException("--host <path to PgNotify.Bench.Host.dll> is required");
// epoll (default): one thread reads every client socket; async: a receive loop per socket (the first version's clients).
var clientMode = Arg("--clients") ?? "epoll";
ThreadPool.SetMinThreads(Math.Max(128, Environment.ProcessorCount), Math.Max(128, Environment.ProcessorCount)); // blocking handshakes
// N bench hosts on one database (ports BENCH_PORT, +1, ...), client sockets spread over them round-robin.
var instances = int.Parse(Arg("--instances") ?? "1");
var runner = new Runner(connectionString, hostDll, seconds, clientMode, instances);

// Warm-up (not recorded): JIT the clients' receive path so the first measured run is not charged for it.
Console.Error.WriteLine("--- warm-up (not recorded)");
await new Runner(connectionString, hostDll, 3, clientMode).RunAsync(new Scenario("warmup", 50, 1_000, 1), "floor");

var results = new List<RunResult>();
foreach (var name in scenarioNames)
{
    foreach (var scenario in Scenario.Expand(name))
    {
        foreach (var mode in modes)
        {
            if ((scenario.Idle && mode == "floor") || (scenario.Snapshots > 0 && mode != "pgnotify"))
            {
                continue; // a raw socket's memory is the kernel's, not in any RSS: no floor for idle memory
            }

            Console.Error.WriteLine($"--- {scenario.Name} {mode}: {scenario.Sockets} sockets, {(scenario.Idle ? "idle" : scenario.Rate > 0 ? $"{scenario.Rate} rows/s" : $"unthrottled, batches of {scenario.Batch}")}");
            try
            {
                var result = await runner.RunAsync(scenario, mode);
                results.Add(result);
                Console.Error.WriteLine("    " + Report.Line(result, results));
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"    FAILED: {ex.GetType().Name}: {ex.Message}");
                results.Add(new RunResult { Scenario = scenario.Name, Mode = mode, Sockets = scenario.Sockets, Error = ex.Message });
            }
        }
    }
}

Console.WriteLine();
Console.WriteLine(Report.Table(results));
Directory.CreateDirectory(outDir);
var file = Path.Combine(outDir, $"bench-{DateTime.UtcNow:yyyyMMdd-HHmmss}.json");
var machine = new
{
    Environment.ProcessorCount,
    LoadAverage = File.ReadAllText("/proc/loadavg").Trim(),
    Kernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
    Runtime = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
    Seconds = seconds,
};
object report = instances == 1 ? new { machine, results } : new { machine, instances, results };
await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
Console.WriteLine($"written {file}");
return 0;

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

internal sealed record Scenario(string Name, int Sockets, double Rate, int Writers, int Batch = 0, int Pad = 0, bool Idle = false, int Snapshots = 0)
{
    public static IEnumerable<Scenario> Expand(string name) => name switch
    {
        "L" => [new("L", 100, 500, 2)],
        "F" => [new("F", 1_000, 100, 1)],
        "S" => [new("S", 100, 2_000, 4)],
        "I" => [new("I20k", 10, 20_000, 2, Batch: 200), new("I", 10, 0, 4, Batch: 200)],
        "B" => [new("B", 20, 20, 1, Pad: 100 * 1024)],
        // SN: L, and L again while 100 more sockets each ask for a snapshot of 10,000 rows at once (pgnotify mode only).
        "SN" => [new("L", 100, 500, 2), new("SN", 100, 500, 2, Snapshots: 100)],
        "D" => [new("D5k", 5_000, 0, 0, Idle: true), new("D20k", Math.Min(20_000, OpenFileLimit() - 500), 0, 0, Idle: true)],
        // M5k: memory of busy sockets, 5,000 sockets each receiving 10 rows/s (50,000 deliveries/s).
        "M" => [new("M5k", 5_000, 10, 1)],
        // A rate sweep of I: "I40k" is I20k's shape (10 sockets, batches of 200) paced at 40,000 rows/s.
        _ when name.StartsWith('I') && name.EndsWith('k') && int.TryParse(name[1..^1], out var thousands) =>
            [new(name, 10, thousands * 1_000, Math.Max(2, thousands / 20), Batch: 200)],
        // A rate sweep of S: "S5k" is S's shape (100 sockets, single-row transactions) paced at 5,000 rows/s.
        _ when name.StartsWith('S') && name.EndsWith('k') && int.TryParse(name[1..^1], out var thousands) =>
            [new(name, 100, thousands * 1_000, Math.Max(4, thousands * 2))],
        // "I20kx1", "Sx1": a scenario with another number of sockets (one: the cost per change, hardly any per delivery).
        _ when name.Split('x') is [var scenario, var count] && int.TryParse(count, out var sockets) =>
            [.. Expand(scenario).Select(s => s with { Name = name, Sockets = sockets })],
        _ => throw new ArgumentException($"unknown scenario {name}"),
    };

    /// <summary>The soft "Max open files" of this process (the host inherits it): each socket is one descriptor on each side.</summary>
    private static int OpenFileLimit()
    {
        var line = File.ReadLines("/proc/self/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        var value = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        return value == "unlimited" ? int.MaxValue : int.Parse(value);
    }
}
