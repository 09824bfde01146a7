namespace PgNotify.Bench;

/// <summary>CPU time and RSS of a process, read from /proc/&lt;pid&gt;/stat (utime + stime, in clock ticks of 10 ms).</summary>
internal static class ProcStat
{
    private const double TickSeconds = 0.01; // sysconf(_SC_CLK_TCK) is 100 on Linux x86-64 and arm64
    private static readonly long PageSize = Environment.SystemPageSize;

    public static (double CpuSeconds, long RssBytes) Read(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): utime is field 14, stime 15, rss 24.
        var utime = long.Parse(fields[11]);
        var stime = long.Parse(fields[12]);
        var rss = long.Parse(fields[21]);
        return ((utime + stime) * TickSeconds, rss * PageSize);
    }

    /// <summary>The process's peak RSS so far (VmHWM in /proc/&lt;pid&gt;/status).</summary>
    public static long PeakRssBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0]) * 1024;
    }

    /// <summary>A process's CPU seconds so far, or 0 once it is gone.</summary>
    public static double CpuSecondsOrZero(int pid)
    {
        try
        {
            return Read(pid).CpuSeconds;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>The parent of a process (PPid in /proc/&lt;pid&gt;/status): a backend's is its postmaster.</summary>
    public static int ParentPid(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("PPid:", StringComparison.Ordinal));
        return int.Parse(line["PPid:".Length..].Trim());
    }

    /// <summary>
    /// The CPU time of one PostgreSQL cluster: its postmaster and every process it started (backends, walsenders,
    /// auxiliary processes), not another cluster's on the same machine.
    /// </summary>
    public static double PostgresCpuSeconds(int postmasterPid)
    {
        double total = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(dir);
            if (!int.TryParse(name, out var pid))
            {
                continue;
            }

            try
            {
                var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
                if (comm.StartsWith("postgres", StringComparison.Ordinal) && (pid == postmasterPid || ParentPid(pid) == postmasterPid))
                {
                    total += Read(pid).CpuSeconds;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return total;
    }

    /// <summary>CPU time of the whole machine (all cores, busy time) from /proc/stat.</summary>
    public static double MachineBusySeconds()
    {
        var line = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        // cpu user nice system idle iowait irq softirq steal
        long busy = long.Parse(line[1]) + long.Parse(line[2]) + long.Parse(line[3]) + long.Parse(line[6]) + long.Parse(line[7]) + long.Parse(line[8]);
        return busy * TickSeconds;
    }
}
