using System.Collections.Concurrent;

namespace PgNotify.Internal;

/// <summary>
/// What the health check needs beyond the connection state: loops that died (Unhealthy until they recover) and setup
/// problems found by the checks (Degraded until fixed). Written by the listener's loops, read by the health check.
/// </summary>
internal sealed class PgNotifyStatus(TimeProvider time, TimeSpan recoveryWindow)
{
    private readonly ConcurrentDictionary<string, LoopFailure> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _problems = new(StringComparer.Ordinal);

    /// <summary>A loop died: <see cref="Failures"/> reports it until it makes progress again.</summary>
    public void LoopFailed(string loop, Exception error) =>
        _failures.AddOrUpdate(
            loop,
            _ => new LoopFailure(loop, error, time.GetUtcNow(), null, 1),
            (_, previous) => previous with { Error = error, FailedAt = time.GetUtcNow(), RestartedAt = null, Failures = previous.Failures + 1 });

    /// <summary>A loop that had died runs again.</summary>
    public void LoopRestarted(string loop)
    {
        if (_failures.TryGetValue(loop, out var failure))
        {
            _failures.TryUpdate(loop, failure with { RestartedAt = time.GetUtcNow() }, failure);
        }
    }

    /// <summary>A loop made progress (handled an item, listened, pruned): any failure of it is over.</summary>
    /// <returns><see langword="true"/> when it had failed before.</returns>
    public bool LoopProgressed(string loop) => !_failures.IsEmpty && _failures.TryRemove(loop, out _);

    /// <summary>
    /// Loops that died and have not yet recovered: still waiting to restart, or restarted less than the recovery window
    /// ago without progress since.
    /// </summary>
    public IReadOnlyList<LoopFailure> Failures
    {
        get
        {
            var now = time.GetUtcNow();
            return [.. _failures.Values.Where(f => f.RestartedAt is not { } restarted || now - restarted < recoveryWindow).OrderBy(f => f.Loop, StringComparer.Ordinal)];
        }
    }

    /// <summary>Sets or clears (<paramref name="message"/> null) a setup problem under <paramref name="key"/>.</summary>
    public void SetProblem(string key, string? message)
    {
        if (message is null)
        {
            _problems.TryRemove(key, out _);
        }
        else
        {
            _problems[key] = message;
        }
    }

    /// <summary>Clears every problem whose key starts with <paramref name="prefix"/>.</summary>
    public void ClearProblems(string prefix)
    {
        foreach (var key in _problems.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)))
        {
            _problems.TryRemove(key, out _);
        }
    }

    /// <summary>Setup problems that cost changes or will: each says how to fix it.</summary>
    public IReadOnlyList<string> Problems => [.. _problems.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value)];
}

/// <summary>A loop that died: which, why, when, and whether it has been restarted.</summary>
internal sealed record LoopFailure(string Loop, Exception Error, DateTimeOffset FailedAt, DateTimeOffset? RestartedAt, int Failures);
