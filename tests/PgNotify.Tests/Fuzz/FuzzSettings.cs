using System.Globalization;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// The scale and seed of the host fuzz tests, from the environment, so CI runs a short version and
/// <c>scripts/fuzz.sh</c> the full one:
/// <list type="bullet">
/// <item><c>PGNOTIFY_FUZZ_SEED</c>: replays a run (every generator's seed derives from it). Default: a new seed.</item>
/// <item><c>PGNOTIFY_FUZZ_FRAMES</c>: client frames across all sockets. Default 20,000 (full run: 1,000,000).</item>
/// <item><c>PGNOTIFY_FUZZ_SOCKETS</c>: fuzzing sockets. Default 50.</item>
/// <item><c>PGNOTIFY_FUZZ_NOTIFIES</c>: NOTIFY payloads. Default 5,000 (full run: 100,000).</item>
/// <item><c>PGNOTIFY_FUZZ_MAX_HEAP_MB</c>: the bound on the managed heap during the run. Default 512 MB.</item>
/// <item><c>PGNOTIFY_FUZZ_REPORT</c>: a file the figures of each run are appended to (scripts/fuzz.sh reads it).</item>
/// </list>
/// </summary>
public sealed record FuzzSettings(int Seed, int Frames, int Sockets, int Notifies, long MaxHeapBytes, string? ReportPath)
{
    public static FuzzSettings FromEnvironment() => new(
        Int("PGNOTIFY_FUZZ_SEED", Random.Shared.Next()),
        Int("PGNOTIFY_FUZZ_FRAMES", 20_000),
        Int("PGNOTIFY_FUZZ_SOCKETS", 50),
        Int("PGNOTIFY_FUZZ_NOTIFIES", 5_000),
        Int("PGNOTIFY_FUZZ_MAX_HEAP_MB", 512) * 1024L * 1024L,
        Environment.GetEnvironmentVariable("PGNOTIFY_FUZZ_REPORT") is { Length: > 0 } path ? path : null);

    /// <summary>A generator's own seed: stable for a given run seed and stream number.</summary>
    public int SeedFor(int stream) => unchecked((Seed * 1_000_003) + (stream * 7_919));

    private static int Int(string name, int fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } text ? int.Parse(text, CultureInfo.InvariantCulture) : fallback;
}
