using System.Diagnostics;
using System.Globalization;
using System.Net;
using Npgsql;

namespace PgNotify.Bench;

/// <summary>Runs one scenario in one mode: starts the host, connects the clients, runs the writers, measures.</summary>
internal sealed class Runner(string connectionString, string hostDll, double seconds, string clientMode, int instances = 1)
{
    private static readonly int Port = HostGroup.BasePort;

    private readonly BenchDatabase _database = new(connectionString);

    /// <summary>The postmaster of the database under measurement: PostgreSQL's CPU is its processes' only.</summary>
    private int _postmasterPid;

    public async Task<RunResult> RunAsync(Scenario scenario, string mode)
    {
        _postmasterPid = await _database.ResetAsync(instances);
        var paced = scenario.Rate > 0;
        var rows = paced ? (long)(scenario.Rate * seconds) : 0;
        if (paced && scenario.Batch > 1)
        {
            rows = rows / scenario.Batch * scenario.Batch;
        }

        var hostArgs = $"--mode {mode} --connection \"{connectionString}\"";
        if (mode == "floor")
        {
            hostArgs += paced
                ? $" --rate {scenario.Rate} --rows {rows} --pad {scenario.Pad}"
                : $" --rate 0 --rows {(long)(25_000 * seconds)} --pad {scenario.Pad}";
        }

        using var host = await HostGroup.StartAsync(hostDll, hostArgs, instances);
        var result = new RunResult { Scenario = scenario.Name, Mode = mode, Sockets = scenario.Sockets, TargetRate = scenario.Rate };
        result.ServerRssStartBytes = host.RssBytes().Sum();
        if (scenario.Idle)
        {
            (result.ServerHeapBeforeBytes, result.ServerRssBeforeBytes) = await host.GcAsync();
        }

        // Connect (100 handshakes in flight at most) and wait for every socket's subscription to be live.
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
                    var endPoint = host.EndPointOf(i);
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
                if (int.TryParse(Environment.GetEnvironmentVariable("BENCH_IDLE_HOLD_SECONDS"), out var hold) && hold > 0)
                {
                    // Time to take a heap dump of the host (dotnet-gcdump collect -p <pid>) with the sockets held.
                    Console.WriteLine($"holding {scenario.Sockets} idle sockets for {hold} s (host pids: {string.Join(", ", host.Pids)})");
                    await Task.Delay(TimeSpan.FromSeconds(hold));
                }

                result.ServerRssAfterBytes = host.RssBytes().Sum();
                (result.ServerHeapAfterBytes, var rssAfterGc) = await host.GcAsync();
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

        }
    }

    private async Task MeasureDeliveryAsync(Scenario scenario, string mode, HostGroup host, LeanClient[] clients, long rows, RunResult result)
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

        var writes0 = mode == "pgnotify" ? await host.WritesAsync() : default;
        result.ServerRssBeforeBytes = host.RssBytes().Sum();
        var server0 = host.CpuSeconds();
        var self0 = ProcStat.Read(Environment.ProcessId).CpuSeconds;
        var pg0 = ProcStat.PostgresCpuSeconds(_postmasterPid);
        var sourceBackends = await _database.SourceBackendPidsAsync();
        var sourceBackends0 = sourceBackends.Sum(ProcStat.CpuSecondsOrZero);
        var machine0 = ProcStat.MachineBusySeconds();
        var start = Stopwatch.GetTimestamp();
        double writer1 = 0;

        long committed;
        if (writer is null)
        {
            host.WriteLine("go");
            await Task.WhenAll(host.Hosts.Select(h => h.WaitForLineAsync("DONE", TimeSpan.FromSeconds(seconds * 5 + 30))));
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
        var server1 = host.CpuSeconds();
        var serverRss1 = host.RssBytes();
        result.ServerCpuSeconds = server1.Sum() - server0.Sum();
        if (mode == "pgnotify")
        {
            var writes1 = await host.WritesAsync();
            result.FramesPerWrite = (double)(writes1.Frames - writes0.Frames) / Math.Max(1, writes1.Writes - writes0.Writes);
            (result.DirectSockets, result.PipeSockets) = await host.WritePathsAsync();
        }

        result.ServerRssAfterBytes = serverRss1.Sum();
        var peakRss = host.PeakRssBytes();
        result.ServerPeakRssBytes = peakRss.Sum();
        result.ClientCpuSeconds = ProcStat.Read(Environment.ProcessId).CpuSeconds - self0;
        result.PostgresCpuSeconds = ProcStat.PostgresCpuSeconds(_postmasterPid) - pg0;
        result.SourceBackends = sourceBackends.Length;
        result.SourceBackendCpuSeconds = sourceBackends.Sum(ProcStat.CpuSecondsOrZero) - sourceBackends0;
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
        if (host.Count > 1)
        {
            result.PerInstance = [.. Enumerable.Range(0, host.Count).Select(h => new InstanceResult
            {
                Port = Port + h,
                Sockets = clients.Where((_, i) => host.HostOf(i) == h).Count(),
                CpuSeconds = server1[h] - server0[h],
                Deliveries = clients.Where((_, i) => host.HostOf(i) == h).Sum(c => c.Received),
                Missing = clients.Where((_, i) => host.HostOf(i) == h).Sum(c => Math.Max(0, committed - c.Distinct)),
                RssAfterBytes = serverRss1[h],
                PeakRssBytes = peakRss[h],
            })];
            foreach (var instance in result.PerInstance)
            {
                instance.CpuUsPerDelivery = instance.CpuSeconds * 1e6 / Math.Max(1, instance.Deliveries);
            }
        }

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
}
