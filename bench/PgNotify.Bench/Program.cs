using System.Globalization;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Npgsql;
using PgNotify.Bench;

// PgNotify.Bench: drives the bench host (bench/PgNotify.Bench.Host) and PostgreSQL; see docs/benchmarks.md.
//
//   PgNotify.Bench [--scenarios L,F,S,I,D,B,I40k,...] [--modes floor,baseline,pgnotify] [--seconds 12] [--out bench/results]
//                  [--clients epoll|async]
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
var runner = new Runner(connectionString, hostDll, seconds, clientMode);

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
await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { machine, results }, new JsonSerializerOptions { WriteIndented = true }));
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
        // A rate sweep of I: "I40k" is I20k's shape (10 sockets, batches of 200) paced at 40,000 rows/s.
        _ when name.StartsWith('I') && name.EndsWith('k') && int.TryParse(name[1..^1], out var thousands) =>
            [new(name, 10, thousands * 1_000, Math.Max(2, thousands / 20), Batch: 200)],
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

internal sealed class RunResult
{
    public string Scenario { get; set; } = "";
    public string Mode { get; set; } = "";
    public int Sockets { get; set; }
    public double TargetRate { get; set; }
    public string? Error { get; set; }
    public long RowsCommitted { get; set; }
    public double WriteSeconds { get; set; }
    public long Deliveries { get; set; }
    public long Expected { get; set; }
    public long Missing { get; set; }
    public long Duplicates { get; set; }
    public long Resyncs { get; set; }
    public int SocketsWithLoss { get; set; }
    public double P50Ms { get; set; }
    public double P90Ms { get; set; }
    public double P99Ms { get; set; }
    public double P999Ms { get; set; }
    public double MaxMs { get; set; }
    public double RowsPerSecond { get; set; }
    public double DeliveriesPerSecond { get; set; }
    public double ServerCpuSeconds { get; set; }
    public double ServerCpuUsPerDelivery { get; set; }
    public double ClientCpuSeconds { get; set; }
    public double ClientCpuUsPerDelivery { get; set; }
    public double WriterCpuSeconds { get; set; }
    public double PostgresCpuSeconds { get; set; }
    public double MachineBusySeconds { get; set; }
    public double WallSeconds { get; set; }
    public long ServerRssStartBytes { get; set; }
    public long ServerRssBeforeBytes { get; set; }
    public long ServerRssAfterBytes { get; set; }
    public long ServerHeapBeforeBytes { get; set; }
    public long ServerHeapAfterBytes { get; set; }
    public double RssPerIdleSocketBytes { get; set; }
    public double HeapPerIdleSocketBytes { get; set; }
    public double ConnectSeconds { get; set; }
    public double FramesPerWrite { get; set; }
    public long ServerPeakRssBytes { get; set; }
    public int SnapshotSockets { get; set; }
    public long SnapshotRows { get; set; }
    public int SnapshotsFailed { get; set; }
    public double SnapshotSeconds { get; set; }
    public long SnapshotWindowDeliveries { get; set; }
    public double SnapshotWindowP99Ms { get; set; }
}

internal sealed class Runner(string connectionString, string hostDll, double seconds, string clientMode)
{
    /// <summary>The bench host's port: 5190, or BENCH_PORT (so that two checkouts can measure on one machine).</summary>
    private static readonly int Port = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PORT"), out var port) ? port : 5190;

    public async Task<RunResult> RunAsync(Scenario scenario, string mode)
    {
        await ResetTableAsync();
        var paced = scenario.Rate > 0;
        var rows = paced ? (long)(scenario.Rate * seconds) : 0;
        if (paced && scenario.Batch > 1)
        {
            rows = rows / scenario.Batch * scenario.Batch;
        }

        var hostArgs = $"--mode {mode} --port {Port} --connection \"{connectionString}\"";
        if (mode == "floor")
        {
            hostArgs += paced
                ? $" --rate {scenario.Rate} --rows {rows} --pad {scenario.Pad}"
                : $" --rate 0 --rows {(long)(25_000 * seconds)} --pad {scenario.Pad}";
        }

        using var host = Child.Start(hostDll, hostArgs);
        await host.WaitForLineAsync("READY", TimeSpan.FromSeconds(60));
        var result = new RunResult { Scenario = scenario.Name, Mode = mode, Sockets = scenario.Sockets, TargetRate = scenario.Rate };
        result.ServerRssStartBytes = ProcStat.Read(host.Pid).RssBytes;
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}") };
        if (scenario.Idle)
        {
            (result.ServerHeapBeforeBytes, result.ServerRssBeforeBytes) = await GcAsync(http);
        }

        // Connect (100 handshakes in flight at most) and wait for every socket's subscription to be live.
        var endPoint = new IPEndPoint(IPAddress.Loopback, Port);
        var path = mode == "pgnotify" ? "/ws/changes/?tables=bench_rows" : "/ws";
        var clients = new LeanClient[scenario.Sockets];
        var maxRows = paced ? rows + 16 : 4_000_000;
        var connectWatch = Stopwatch.StartNew();
        // Idle sockets (D) keep the async handshake and loop; delivery scenarios are read by one epoll thread.
        using var epoll = clientMode == "epoll" && !scenario.Idle ? new EpollLoop() : null;
        using (var gate = new SemaphoreSlim(100))
        {
            await Task.WhenAll(Enumerable.Range(0, scenario.Sockets).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    var client = new LeanClient();
                    client.Arm(scenario.Idle ? 8 : maxRows, scenario.Idle ? 0 : (int)Math.Min(maxRows, 1_000_000));
                    clients[i] = client;
                    if (epoll is not null)
                    {
                        await Task.Run(() => client.Connect(endPoint, path));
                        epoll.Add(client);
                    }
                    else
                    {
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                        await client.ConnectAsync(endPoint, path, timeout.Token);
                    }

                    await client.Subscribed.WaitAsync(TimeSpan.FromSeconds(60));
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        result.ConnectSeconds = connectWatch.Elapsed.TotalSeconds;
        try
        {
            if (scenario.Idle)
            {
                // Hold the idle sockets a moment, then measure the server after a full GC.
                await Task.Delay(TimeSpan.FromSeconds(3));
                result.ServerRssAfterBytes = ProcStat.Read(host.Pid).RssBytes;
                (result.ServerHeapAfterBytes, var rssAfterGc) = await GcAsync(http);
                result.RssPerIdleSocketBytes = (double)(rssAfterGc - result.ServerRssBeforeBytes) / scenario.Sockets;
                result.ServerRssAfterBytes = rssAfterGc;
                result.HeapPerIdleSocketBytes = (double)(result.ServerHeapAfterBytes - result.ServerHeapBeforeBytes) / scenario.Sockets;
                return result;
            }

            await MeasureDeliveryAsync(scenario, mode, host, clients, rows, result);
            return result;
        }
        finally
        {
            foreach (var client in clients)
            {
                client?.Dispose();
            }

            host.Stop();
        }
    }

    private async Task MeasureDeliveryAsync(Scenario scenario, string mode, Child host, LeanClient[] clients, long rows, RunResult result)
    {
        var paced = scenario.Rate > 0;
        Child? writer = null;
        if (mode != "floor")
        {
            writer = Child.Start(
                Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? typeof(Runner).Assembly.Location : null,
                $"write --connection \"{connectionString}\" --writers {scenario.Writers} --rate {scenario.Rate} --rows {rows} --seconds {seconds} --batch {Math.Max(1, scenario.Batch)} --pad {scenario.Pad}");
            await writer.WaitForLineAsync("READY", TimeSpan.FromSeconds(30));
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}") };
        var writes0 = mode == "pgnotify" ? await WritesAsync(http) : default;
        result.ServerRssBeforeBytes = ProcStat.Read(host.Pid).RssBytes;
        var server0 = ProcStat.Read(host.Pid).CpuSeconds;
        var self0 = ProcStat.Read(Environment.ProcessId).CpuSeconds;
        var pg0 = ProcStat.PostgresCpuSeconds();
        var machine0 = ProcStat.MachineBusySeconds();
        var start = Stopwatch.GetTimestamp();
        double writer1 = 0;

        long committed;
        if (writer is null)
        {
            host.WriteLine("go");
            await host.WaitForLineAsync("DONE", TimeSpan.FromSeconds(seconds * 5 + 30));
            committed = paced ? rows : (long)(25_000 * seconds);
            result.WriteSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        else
        {
            // SN: the snapshot sockets connect before the writes start; they all ask a quarter of the way in.
            await using var burst = scenario.Snapshots > 0 ? await SnapshotBurst.ConnectAsync(Port, scenario.Snapshots) : null;
            writer.WriteLine("go");
            Task<(double Seconds, long Rows, int Failed)>? snapshots = null;
            int[]? windowStart = null;
            int[]? windowEnd = null;
            if (burst is not null)
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds / 4));
                windowStart = [.. clients.Select(c => c.LatencyCount)];
                var running = burst.RunAsync(TimeSpan.FromSeconds(seconds * 5 + 60));
                snapshots = running.ContinueWith(t =>
                {
                    windowEnd = [.. clients.Select(c => c.LatencyCount)];
                    return t.Result;
                }, TaskScheduler.Default);
            }

            var done = (await writer.WaitForLineAsync("DONE", TimeSpan.FromSeconds(seconds * 5 + 60))).Split(' ');
            if (snapshots is not null)
            {
                (result.SnapshotSeconds, result.SnapshotRows, result.SnapshotsFailed) = await snapshots;
                result.SnapshotSockets = scenario.Snapshots;
                // L's latencies of the deliveries received while the burst ran (the first to the last snapshot_end).
                var window = clients.SelectMany((c, i) => c.Latencies[windowStart![i]..windowEnd![i]].ToArray()).Order().ToArray();
                result.SnapshotWindowDeliveries = window.Length;
                result.SnapshotWindowP99Ms = window.Length == 0 ? double.NaN : window[Math.Min(window.Length - 1, (int)Math.Ceiling(0.99 * window.Length) - 1)] / 1000.0;
            }

            writer1 = ProcStat.Read(writer.Pid).CpuSeconds;
            committed = long.Parse(done[1]);
            result.WriteSeconds = double.Parse(done[3]);
        }

        // Drain: wait until every socket has every row, or until nothing arrives for 5 s.
        var expected = committed * clients.Length;
        var lastTotal = -1L;
        var lastProgress = Stopwatch.GetTimestamp();
        while (true)
        {
            var total = clients.Sum(c => c.Received);
            if (total >= expected)
            {
                break;
            }

            if (total != lastTotal)
            {
                lastTotal = total;
                lastProgress = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(lastProgress) > TimeSpan.FromSeconds(5))
            {
                break;
            }

            await Task.Delay(20);
        }

        var lastReceive = clients.Max(c => c.LastReceiveTimestamp);
        result.WallSeconds = Stopwatch.GetElapsedTime(start, Math.Max(lastReceive, start + 1)).TotalSeconds;
        var server1 = ProcStat.Read(host.Pid);
        result.ServerCpuSeconds = server1.CpuSeconds - server0;
        if (mode == "pgnotify")
        {
            var writes1 = await WritesAsync(http);
            result.FramesPerWrite = (double)(writes1.Frames - writes0.Frames) / Math.Max(1, writes1.Writes - writes0.Writes);
        }

        result.ServerRssAfterBytes = server1.RssBytes;
        result.ServerPeakRssBytes = ProcStat.PeakRssBytes(host.Pid);
        result.ClientCpuSeconds = ProcStat.Read(Environment.ProcessId).CpuSeconds - self0;
        result.PostgresCpuSeconds = ProcStat.PostgresCpuSeconds() - pg0;
        result.MachineBusySeconds = ProcStat.MachineBusySeconds() - machine0;
        result.WriterCpuSeconds = writer1;
        writer?.WriteLine("exit");
        writer?.Dispose();

        result.RowsCommitted = committed;
        result.Expected = expected;
        result.Deliveries = clients.Sum(c => c.Received);
        result.Duplicates = clients.Sum(c => c.Duplicates);
        result.Missing = clients.Sum(c => Math.Max(0, committed - c.Distinct));
        result.SocketsWithLoss = clients.Count(c => c.Distinct < committed);
        result.Resyncs = clients.Sum(c => c.Resyncs);
        result.RowsPerSecond = committed / result.WriteSeconds;
        result.DeliveriesPerSecond = result.Deliveries / result.WallSeconds;
        result.ServerCpuUsPerDelivery = result.ServerCpuSeconds * 1e6 / Math.Max(1, result.Deliveries);
        result.ClientCpuUsPerDelivery = result.ClientCpuSeconds * 1e6 / Math.Max(1, result.Deliveries);

        var all = new int[clients.Sum(c => c.LatencyCount)];
        var at = 0;
        foreach (var client in clients)
        {
            client.Latencies.CopyTo(all.AsSpan(at));
            at += client.LatencyCount;
        }

        Array.Sort(all);
        double Pct(double p) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)Math.Ceiling(p * all.Length) - 1)] / 1000.0;
        result.P50Ms = Pct(0.50);
        result.P90Ms = Pct(0.90);
        result.P99Ms = Pct(0.99);
        result.P999Ms = Pct(0.999);
        result.MaxMs = all.Length == 0 ? double.NaN : all[^1] / 1000.0;
    }

    private static async Task<(long Frames, long Writes)> WritesAsync(HttpClient http)
    {
        var parts = (await http.GetStringAsync("/bench/writes")).Split(' ');
        return (long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    private static async Task<(long Heap, long Rss)> GcAsync(HttpClient http)
    {
        var text = await http.GetStringAsync("/bench/gc");
        var parts = text.Split(' ');
        return (long.Parse(parts[0]), long.Parse(parts[1]));
    }

    private async Task ResetTableAsync()
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            """
            CREATE TABLE IF NOT EXISTS bench_rows (bench_seq bigint NOT NULL, bench_sent bigint NOT NULL, pad text NOT NULL);
            TRUNCATE bench_rows;
            CREATE TABLE IF NOT EXISTS bench_snap (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL, tags text[] NOT NULL, at timestamptz NOT NULL);
            INSERT INTO bench_snap SELECT g, 'profile ' || g, g % 1000, ARRAY['a', 'b', g::text], '2026-12-01'::timestamptz + g * interval '1 second'
              FROM generate_series(1, 10000) g ON CONFLICT (id) DO NOTHING;
            DO $$ BEGIN
              IF to_regclass('pgnotify.large_payload') IS NOT NULL THEN TRUNCATE pgnotify.large_payload; END IF;
            END $$;
            """,
            connection);
        await command.ExecuteNonQueryAsync();
        if (Environment.GetEnvironmentVariable("PgNotify__Source") == "Replication")
        {
            // Each run starts from the present: the last run's host left its backlog in the slot (rows whose
            // bench_seq the new run uses again), so its slot goes once its walsender has let go of it.
            var slot = "pgnotify_" + (Environment.GetEnvironmentVariable("PgNotify__InstanceName") ?? "bench");
            await using var drop = new NpgsqlCommand(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1", connection);
            drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = slot });
            for (var attempt = 0; attempt < 100 && await drop.ExecuteScalarAsync() is true; attempt++)
            {
                await Task.Delay(100);
            }

            drop.CommandText = "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active";
            await drop.ExecuteNonQueryAsync();
        }
    }
}

/// <summary>A child process whose stdout is read line by line.</summary>
internal sealed class Child : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly SemaphoreSlim _signal = new(0);

    private Child(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (_lines)
            {
                _lines.Add(e.Data);
            }

            if (e.Data.Contains("warn", StringComparison.Ordinal) || e.Data.Contains("fail", StringComparison.Ordinal) || e.Data.StartsWith("      ", StringComparison.Ordinal))
            {
                Console.Error.WriteLine("    [child] " + e.Data.Trim());
            }

            _signal.Release();
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine("    [child] " + e.Data);
            }
        };
    }

    public int Pid => _process.Id;

    /// <summary>Starts <paramref name="dll"/> with dotnet, or this very executable when <paramref name="dll"/> is null.</summary>
    public static Child Start(string? dll, string arguments)
    {
        var info = dll is null
            ? new ProcessStartInfo(Environment.ProcessPath!, arguments)
            : new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}");
        info.RedirectStandardOutput = true;
        info.RedirectStandardInput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        var child = new Child(Process.Start(info)!);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        return child;
    }

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    public async Task<string> WaitForLineAsync(string prefix, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            lock (_lines)
            {
                var line = _lines.FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
                if (line is not null)
                {
                    return line;
                }
            }

            if (_process.HasExited)
            {
                throw new InvalidOperationException($"the child process exited ({_process.ExitCode}) before '{prefix}'");
            }

            var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (left <= TimeSpan.Zero || !await _signal.WaitAsync(left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1)) && left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"no '{prefix}' from the child process");
            }
        }
    }

    public void Stop()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public void Dispose()
    {
        Stop();
        _process.Dispose();
        _signal.Dispose();
    }
}
