using System.Globalization;
using System.Net;

namespace PgNotify.Bench;

/// <summary>
/// The server under measurement: one bench host on BENCH_PORT (5190 by default), or with <c>--instances N</c> N hosts,
/// separate processes on one database, on BENCH_PORT, BENCH_PORT + 1, ... Client socket i connects to host i mod N
/// (round-robin). With more than one host each gets its own <c>PgNotify:InstanceName</c> (the name given to the driver,
/// default "bench", followed by 1, 2, ...), so that with the replication source each instance streams its own slot.
/// </summary>
internal sealed class HostGroup : IDisposable
{
    /// <summary>The first host's port: 5190, or BENCH_PORT (so that two checkouts can measure on one machine).</summary>
    public static readonly int BasePort = int.TryParse(Environment.GetEnvironmentVariable("BENCH_PORT"), out var port) ? port : 5190;

    private readonly Child[] _hosts;
    private readonly HttpClient[] _http;

    private HostGroup(Child[] hosts)
    {
        _hosts = hosts;
        _http = [.. hosts.Select((_, i) => new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{BasePort + i}") })];
    }

    public int Count => _hosts.Length;

    public IReadOnlyList<Child> Hosts => _hosts;

    /// <summary>The instance names (and so the slot names after <c>pgnotify_</c>) the hosts run with.</summary>
    public static IReadOnlyList<string> InstanceNames(int count)
    {
        var name = Environment.GetEnvironmentVariable("PgNotify__InstanceName") ?? "bench";
        return count == 1 ? [name] : [.. Enumerable.Range(1, count).Select(i => name + i.ToString(CultureInfo.InvariantCulture))];
    }

    /// <summary>Starts the hosts, each with <paramref name="hostArgs"/> and its own port, and waits until all are ready.</summary>
    public static async Task<HostGroup> StartAsync(string hostDll, string hostArgs, int count)
    {
        var names = InstanceNames(count);
        var hosts = new Child[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var environment = count == 1 ? null : new Dictionary<string, string> { ["PgNotify__InstanceName"] = names[i] };
                hosts[i] = Child.Start(hostDll, $"{hostArgs} --port {BasePort + i}", environment);
            }

            await Task.WhenAll(hosts.Select(h => h.WaitForLineAsync("READY", TimeSpan.FromSeconds(60))));
            return new HostGroup(hosts);
        }
        catch
        {
            foreach (var host in hosts)
            {
                host?.Dispose();
            }

            throw;
        }
    }

    /// <summary>The host that client socket <paramref name="socket"/> connects to: round-robin.</summary>
    public int HostOf(int socket) => socket % _hosts.Length;

    public IPEndPoint EndPointOf(int socket) => new(IPAddress.Loopback, BasePort + HostOf(socket));

    /// <summary>Each host's CPU seconds so far.</summary>
    public double[] CpuSeconds() => [.. _hosts.Select(h => ProcStat.Read(h.Pid).CpuSeconds)];

    /// <summary>The hosts' process ids.</summary>
    public IEnumerable<int> Pids => _hosts.Select(h => h.Pid);

    /// <summary>Each host's RSS now.</summary>
    public long[] RssBytes() => [.. _hosts.Select(h => ProcStat.Read(h.Pid).RssBytes)];

    /// <summary>Each host's peak RSS so far (VmHWM).</summary>
    public long[] PeakRssBytes() => [.. _hosts.Select(h => ProcStat.PeakRssBytes(h.Pid))];

    /// <summary>PgNotify's counters of frames sent and writes made, summed over the hosts.</summary>
    public Task<(long Frames, long Writes)> WritesAsync() => SumPairAsync("/bench/writes");

    /// <summary>PgNotify's sockets that write straight to their connection's socket, and those on Kestrel's pipe.</summary>
    public Task<(long Direct, long Pipe)> WritePathsAsync() => SumPairAsync("/bench/paths");

    /// <summary>GC heap and RSS after a full compacting GC in each host, summed over the hosts.</summary>
    public Task<(long Heap, long Rss)> GcAsync() => SumPairAsync("/bench/gc");

    /// <summary>Asks each host's bench endpoint for its two numbers ("a b") and sums them over the hosts.</summary>
    private async Task<(long, long)> SumPairAsync(string path)
    {
        long first = 0, second = 0;
        foreach (var http in _http)
        {
            var parts = (await http.GetStringAsync(path)).Split(' ');
            first += long.Parse(parts[0], CultureInfo.InvariantCulture);
            second += long.Parse(parts[1], CultureInfo.InvariantCulture);
        }

        return (first, second);
    }

    /// <summary>Tells every host a line on stdin (the floor sender's "go").</summary>
    public void WriteLine(string line)
    {
        foreach (var host in _hosts)
        {
            host.WriteLine(line);
        }
    }

    public void Dispose()
    {
        foreach (var host in _hosts)
        {
            host.Dispose();
        }

        foreach (var http in _http)
        {
            http.Dispose();
        }
    }
}
