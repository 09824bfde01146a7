using System.Diagnostics;

namespace PgNotify.Bench;

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

    /// <summary>
    /// Starts <paramref name="dll"/> with dotnet, or this very executable when <paramref name="dll"/> is null, with
    /// this process's environment plus <paramref name="environment"/>.
    /// </summary>
    public static Child Start(string? dll, string arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = dll is null
            ? new ProcessStartInfo(Environment.ProcessPath!, arguments)
            : new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}");
        info.RedirectStandardOutput = true;
        info.RedirectStandardInput = true;
        info.RedirectStandardError = true;
        info.UseShellExecute = false;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

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
