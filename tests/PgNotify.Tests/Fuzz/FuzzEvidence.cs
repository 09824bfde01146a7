using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// What a fuzz run saw: broken rules (violations), the host's log (every Error in full, counts per event id), the
/// last inputs sent (to find the one that broke something), and memory samples.
/// </summary>
public sealed class FuzzEvidence : ILoggerProvider
{
    private const int RecentInputs = 400;
    private readonly ConcurrentQueue<string> _violations = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly ConcurrentQueue<string> _suspects = new();
    private readonly ConcurrentQueue<string> _warnings = new();
    private readonly ConcurrentQueue<string> _notes = new();
    private readonly ConcurrentDictionary<string, int> _suspectKinds = new();
    private readonly ConcurrentDictionary<string, long> _eventCounts = new();
    private readonly ConcurrentQueue<string> _recent = new();
    private long _peakHeap;
    private long _peakWorkingSet;

    public IReadOnlyCollection<string> Violations => _violations;

    public IReadOnlyCollection<string> Errors => _errors;

    /// <summary>The first warnings that carried an exception (a lost listener connection, for example).</summary>
    public IReadOnlyCollection<string> Warnings => _warnings;

    /// <summary>Inputs a pure check already knows to be dangerous: the likely cause of a violation, for its reproduction.</summary>
    public IReadOnlyCollection<string> Suspects => _suspects;

    public IReadOnlyDictionary<string, long> EventCounts => _eventCounts;

    public long PeakHeapBytes => Interlocked.Read(ref _peakHeap);

    public long PeakWorkingSetBytes => Interlocked.Read(ref _peakWorkingSet);

    public void Violation(string what)
    {
        if (_violations.Count < 200)
        {
            _violations.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {what}");
        }
    }

    /// <summary>Things the report should show that break no rule.</summary>
    public IReadOnlyCollection<string> Notes => _notes;

    public void Note(string what)
    {
        if (_notes.Count < 50)
        {
            _notes.Enqueue(what);
        }
    }

    /// <summary>Records a suspect input, at most three per kind of failure.</summary>
    public void Suspect(string kind, string what)
    {
        if (_suspects.Count < 30 && _suspectKinds.AddOrUpdate(kind, 1, (_, n) => n + 1) <= 3)
        {
            _suspects.Enqueue(what);
        }
    }

    /// <summary>Remembers an input (the last few hundred are kept), so a failure can name what preceded it.</summary>
    public void Input(string label, byte[] bytes) => Input(label, Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, 600)) + (bytes.Length > 600 ? $"… ({bytes.Length} bytes)" : ""));

    public void Input(string label, string text)
    {
        _recent.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {label}: {text}");
        while (_recent.Count > RecentInputs && _recent.TryDequeue(out _))
        {
        }
    }

    public string RecentInputsText => string.Join('\n', _recent);

    /// <summary>Samples the managed heap and the working set until cancelled.</summary>
    public async Task SampleMemoryAsync(CancellationToken cancellationToken)
    {
        using var process = Process.GetCurrentProcess();
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(200));
        try
        {
            do
            {
                Sample(process);
            }
            while (await timer.WaitForNextTickAsync(cancellationToken));
        }
        catch (OperationCanceledException)
        {
        }

        Sample(process);
    }

    private void Sample(Process process)
    {
        process.Refresh();
        Max(ref _peakHeap, GC.GetTotalMemory(false));
        Max(ref _peakWorkingSet, process.WorkingSet64);
    }

    private static void Max(ref long field, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref field)) && Interlocked.CompareExchange(ref field, value, seen) != seen)
        {
        }
    }

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class CapturingLogger(FuzzEvidence evidence, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var key = $"{logLevel} {(eventId.Id != 0 ? eventId.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) : category)}";
            evidence._eventCounts.AddOrUpdate(key, 1, (_, n) => n + 1);
            if (logLevel == LogLevel.Warning && exception is not null && evidence._warnings.Count < 10)
            {
                evidence._warnings.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {eventId.Id} {category}: {formatter(state, exception)} ({exception.GetType().Name}: {exception.Message})");
            }

            if (logLevel >= LogLevel.Error && evidence._errors.Count < 50)
            {
                evidence._errors.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {eventId.Id} {category}: {formatter(state, exception)}\n{exception}");
            }
        }
    }
}
