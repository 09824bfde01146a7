using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using PgNotify.Tests.Infrastructure;
using Xunit.Abstractions;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// Fuzzes a real host (Kestrel, PgNotify, PostgreSQL) with generated and mutated client frames and NOTIFY payloads,
/// while a writer inserts rows and a bystander socket must keep receiving every one of them exactly once, with no
/// resync. The host must log no error, keep running, and stay within a memory bound. The scale and the seed come
/// from <see cref="FuzzSettings"/>: CI runs the defaults, <c>scripts/fuzz.sh</c> the full run. A failure prints the
/// seed that replays it (<c>PGNOTIFY_FUZZ_SEED</c>) and writes the last inputs sent to a file it names.
/// </summary>
public sealed class HostFuzzTests(PostgresFixture db, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private const string Columns = "id bigint PRIMARY KEY, tag text NOT NULL, name text, n numeric, doc jsonb, big text";

    [Fact]
    public async Task Fuzz_ClientFrames_NeverStopDeliveryToOtherSockets()
    {
        var settings = FuzzSettings.FromEnvironment();
        await RunAsync("frames", settings, async (context, cancellationToken) =>
        {
            Task? hold = null;
            var holdGate = new Lock();
            var fuzzer = new FrameFuzzer(context.Host.SocketUri(), context.Table, settings, context.Evidence)
            {
                // Once the budget is spent, the sockets keep their subscriptions until 100 more rows went through them.
                HoldBeforeClose = () =>
                {
                    lock (holdGate)
                    {
                        return hold ??= context.Bystander.WaitForAsync(Interlocked.Read(ref context.Written.Value) + 100, TimeSpan.FromSeconds(15));
                    }
                },
            };
            var watch = Stopwatch.StartNew();
            await fuzzer.RunAsync(cancellationToken);
            var seconds = watch.Elapsed.TotalSeconds;
            return [
                ("frames", fuzzer.FramesSent.ToString(CultureInfo.InvariantCulture)),
                ("sockets", settings.Sockets.ToString(CultureInfo.InvariantCulture)),
                ("frames/s", (fuzzer.FramesSent / seconds).ToString("F0", CultureInfo.InvariantCulture)),
                ("connections", fuzzer.Connections.ToString(CultureInfo.InvariantCulture)),
                ("frame kinds", string.Join(", ", fuzzer.FrameKinds.OrderByDescending(c => c.Value).Select(c => $"{c.Key}={c.Value}"))),
                ("answers", fuzzer.Answers.ToString(CultureInfo.InvariantCulture) + " (" + string.Join(", ", fuzzer.AnswerTypes.OrderByDescending(c => c.Value).Select(c => $"{c.Key}={c.Value}")) + ")"),
                ("closes", string.Join(", ", fuzzer.Closes.OrderByDescending(c => c.Value).Select(c => $"{c.Key}={c.Value}"))),
            ];
        });
    }

    [Fact]
    public async Task Fuzz_NotifyPayloads_NeverStopDeliveryOrResyncOtherSockets()
    {
        var settings = FuzzSettings.FromEnvironment();
        await RunAsync("notify", settings, async (context, cancellationToken) =>
        {
            // Clients with valid filters, so forged rows go through the row filters too.
            string[] filters = ["{\"name\":{\"lt\":\"m\"}}", "{\"n\":{\"gt\":5}}", "{\"name\":{\"in\":[\"alice\",\"bob\"]}}", "{\"id\":{\"gte\":10}}", "{\"tag\":{\"neq\":\"x\"}}"];
            var filtered = new List<TestSocket>();
            foreach (var filter in filters)
            {
                var socket = await TestSocket.ConnectAsync(context.Host.SocketUri());
                await socket.SendAsync($"{{\"type\":\"subscribe\",\"tables\":[\"{context.Table}\"],\"filter\":{filter}}}");
                (await socket.ReceiveTypeAsync("subscribed")).GetProperty("type").GetString().Should().Be("subscribed");
                filtered.Add(socket);
            }

            var drains = filtered.Select(DrainAsync).ToList();
            var fuzz = new NotifyFuzz(settings.SeedFor(3_000), context.Table);
            var watch = Stopwatch.StartNew();
            var sent = 0;
            var refused = 0;
            long? knownRef = null;
            await using var connection = await db.DataSource.OpenConnectionAsync(cancellationToken);
            while (sent < settings.Notifies && !cancellationToken.IsCancellationRequested)
            {
                var batch = new string[Math.Min(50, settings.Notifies - sent)];
                for (var i = 0; i < batch.Length; i++)
                {
                    batch[i] = fuzz.Next(knownRef);
                    context.Evidence.Input($"notify#{sent + i}", batch[i]);
                    CheckPayload(context.Evidence, sent + i, batch[i]);
                }

                try
                {
                    await using var command = new NpgsqlCommand("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", connection);
                    command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = context.Channel });
                    command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = batch });
                    await command.ExecuteNonQueryAsync(cancellationToken);
                }
                catch (PostgresException ex)
                {
                    refused++;
                    context.Evidence.Violation($"harness: PostgreSQL refused a batch of payloads ({ex.SqlState} {ex.MessageText}); fix the generator");
                }

                sent += batch.Length;
                if (sent % 500 == 0)
                {
                    await using var max = new NpgsqlCommand("SELECT max(id) FROM pgnotify.large_payload", connection);
                    knownRef = await max.ExecuteScalarAsync(cancellationToken) is long id ? id : null;
                }
            }

            var seconds = watch.Elapsed.TotalSeconds;
            foreach (var socket in filtered)
            {
                socket.Socket.Abort();
            }

            await Task.WhenAll(drains);
            foreach (var socket in filtered)
            {
                await socket.DisposeAsync();
            }

            return [
                ("payloads", sent.ToString(CultureInfo.InvariantCulture)),
                ("payloads/s", (sent / seconds).ToString("F0", CultureInfo.InvariantCulture)),
                ("refused batches", refused.ToString(CultureInfo.InvariantCulture)),
            ];
        });
    }

    private async Task RunAsync(string name, FuzzSettings settings, Func<FuzzContext, CancellationToken, Task<(string Name, string Value)[]>> workload)
    {
        output.WriteLine($"fuzz {name}: seed {settings.Seed} (replay: PGNOTIFY_FUZZ_SEED={settings.Seed}), frames {settings.Frames}, sockets {settings.Sockets}, notifies {settings.Notifies}");
        var table = await db.CreateTableAsync(Columns);
        var channel = PostgresFixture.NewName("fz");
        var evidence = new FuzzEvidence();
        var total = Stopwatch.StartNew();
        await using var host = await WebHost.StartAsync(
            db.ConnectionString,
            channel,
            [table],
            configureWebSockets: ws => ws.MaxMessagesPerSecond = 1_000, // high enough that most frames reach the parser
            configureBuilder: builder =>
            {
                builder.Logging.ClearProviders();
                builder.Logging.SetMinimumLevel(LogLevel.Information);
                builder.Logging.AddProvider(evidence);
            });
        var stopping = host.App.Lifetime.ApplicationStopping;
        var tagPrefix = "w" + Guid.NewGuid().ToString("N")[..8] + ":";
        await using var bystander = await Bystander.StartAsync(host.SocketUri(), table, tagPrefix);

        using var memoryStop = new CancellationTokenSource();
        var memory = evidence.SampleMemoryAsync(memoryStop.Token);
        using var writerStop = new CancellationTokenSource();
        var writtenSoFar = new StrongBox<long>();
        var writer = WriteAsync(table, tagPrefix, settings, evidence, writtenSoFar, writerStop.Token);

        using var run = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        (string Name, string Value)[] figures;
        try
        {
            figures = await workload(new FuzzContext(host, table, channel, evidence, bystander, writtenSoFar), run.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            figures = [("workload", "cut short: the host stopped")];
        }

        await writerStop.CancelAsync();
        var written = await writer;

        // The bystander must have every row exactly once, and no resync it cannot explain.
        var arrived = stopping.IsCancellationRequested || await bystander.WaitForAsync(written, TimeSpan.FromSeconds(30));
        var missing = Enumerable.Range(1, (int)written).Select(id => (long)id).Where(id => !bystander.Seen.ContainsKey(id)).ToList();
        var duplicated = bystander.Seen.Where(s => s.Value > 1).Select(s => s.Key).Order().ToList();
        var reconnects = host.Status.ReconnectCount;
        var explained = reconnects > 0 && bystander.Resyncs.All(r => r.Contains("listener_reconnected", StringComparison.Ordinal));
        foreach (var resync in bystander.Resyncs)
        {
            if (explained)
            {
                // Not a violation: the listener lost its connection (the warning in the report says why), and told every socket.
                evidence.Note("explained by a listener reconnect: the bystander was told to resync: " + resync);
            }
            else
            {
                evidence.Violation("the bystander was told to resync: " + resync);
            }
        }

        foreach (var problem in bystander.Problems)
        {
            evidence.Violation(problem);
        }

        if (missing.Count > 0 && (!explained || missing.Any(IsDeep)))
        {
            // A row nested deep is written by the trigger like any other: no reconnect explains losing it.
            evidence.Violation($"the bystander is missing {missing.Count} of {written} rows after waiting {(arrived ? "" : "30 s ")}" +
                $"({bystander.Ended ?? "its socket is open"}): {string.Join(",", missing.Take(30).Select(id => IsDeep(id) ? id + " (deep)" : id.ToString(CultureInfo.InvariantCulture)))}{(missing.Count > 30 ? "…" : "")}");
        }

        if (duplicated.Count > 0)
        {
            evidence.Violation($"the bystander got {duplicated.Count} rows more than once: {string.Join(",", duplicated.Take(30))}");
        }

        // The host must still run and answer.
        if (stopping.IsCancellationRequested)
        {
            evidence.Violation("the host stopped itself during the run");
        }
        else
        {
            try
            {
                await using var probe = await TestSocket.ConnectAsync(host.SocketUri());
                var pong = await probe.RequestAsync(new { type = "ping", id = 1 });
                if (pong.GetProperty("type").GetString() != "pong")
                {
                    evidence.Violation("a new socket after the run got " + pong);
                }
            }
            catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or TimeoutException or HttpRequestException)
            {
                evidence.Violation("a new socket after the run failed: " + ex.Message);
            }
        }

        foreach (var error in evidence.Errors)
        {
            evidence.Violation("the host logged an error: " + error);
        }

        await memoryStop.CancelAsync();
        await memory;
        if (evidence.PeakHeapBytes > settings.MaxHeapBytes)
        {
            evidence.Violation($"the managed heap peaked at {evidence.PeakHeapBytes / 1048576} MB, over the bound of {settings.MaxHeapBytes / 1048576} MB");
        }

        var report = new StringBuilder();
        report.AppendLine(CultureInfo.InvariantCulture, $"fuzz {name}: seed {settings.Seed}, {total.Elapsed.TotalSeconds:F1} s");
        foreach (var (key, value) in figures)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  {key}: {value}");
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"  rows written: {written}, seen by the bystander: {bystander.Seen.Count}, forged rows it got: {bystander.Forged}, resyncs: {bystander.Resyncs.Count}");
        report.AppendLine(CultureInfo.InvariantCulture, $"  peak managed heap: {evidence.PeakHeapBytes / 1048576} MB, peak working set: {evidence.PeakWorkingSetBytes / 1048576} MB (bound {settings.MaxHeapBytes / 1048576} MB)");
        report.AppendLine(CultureInfo.InvariantCulture, $"  host errors logged: {evidence.Errors.Count}, violations: {evidence.Violations.Count}");
        foreach (var note in evidence.Notes)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  note: {note}");
        }

        foreach (var warning in evidence.Warnings)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  warning: {warning}");
        }

        foreach (var violation in evidence.Violations)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  VIOLATION: {violation}");
        }

        foreach (var suspect in evidence.Suspects)
        {
            report.AppendLine(CultureInfo.InvariantCulture, $"  suspect: {suspect}");
        }

        report.AppendLine(CultureInfo.InvariantCulture, $"  log events: {string.Join(", ", evidence.EventCounts.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Key}={e.Value}"))}");
        output.WriteLine(report.ToString());
        if (settings.ReportPath is { } path)
        {
            await File.AppendAllTextAsync(path, report.ToString());
        }

        if (evidence.Violations.Count > 0)
        {
            var inputs = Path.Combine(Path.GetTempPath(), $"pgnotify-fuzz-{name}-{settings.Seed}-inputs.txt");
            await File.WriteAllTextAsync(inputs, string.Join('\n', evidence.Suspects.Select(s => "suspect " + s)) + "\n" + evidence.RecentInputsText);
            output.WriteLine($"The last inputs sent before the end of the run are in {inputs}.");
        }

        evidence.Violations.Should().BeEmpty(
            $"fuzz {name} with seed {settings.Seed} (replay: PGNOTIFY_FUZZ_SEED={settings.Seed}; the last inputs are in {Path.GetTempPath()}pgnotify-fuzz-{name}-{settings.Seed}-inputs.txt)");
    }

    /// <summary>
    /// Inserts rows in transactions of ten until stopped; every 97th row is oversized (its payload goes by ref), every
    /// 50th holds a jsonb document nested 65 to 200 levels deep.
    /// </summary>
    private async Task<long> WriteAsync(string table, string tagPrefix, FuzzSettings settings, FuzzEvidence evidence, StrongBox<long> progress, CancellationToken stop)
    {
        const int PerTransaction = 10;
        await Task.Yield();
        var random = new Random(settings.SeedFor(4_000));
        string[] names = ["alice", "bob", "zoë", "😀", "Ω", "", "m", "x\"y", "a\\b"];
        var sql = $"INSERT INTO {PostgresFixture.Quote(table)} (id, tag, name, n, doc, big) " +
            "SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::jsonb[], $6::text[])";
        long written = 0;
        while (!stop.IsCancellationRequested)
        {
            var ids = Enumerable.Range(1, PerTransaction).Select(i => written + i).ToArray();
            var docs = ids.Select(id => IsDeep(id) ? random.Next(65, 200) : 2)
                .Select(depth => string.Concat(Enumerable.Repeat("{\"k\":", depth)) + "[1,\"é\"]" + new string('}', depth)).ToArray();
            try
            {
                await db.ExecuteAsync(sql, ids, ids.Select(id => tagPrefix + id.ToString(CultureInfo.InvariantCulture)).ToArray(),
                    ids.Select(_ => names[random.Next(names.Length)]).ToArray(), ids.Select(_ => (decimal)random.Next(-100, 100) / 4).ToArray(),
                    docs, ids.Select(id => id % 97 == 0 ? new string('x', 9_000) : null).ToArray());
            }
            catch (NpgsqlException ex)
            {
                evidence.Violation($"the writer failed at row {ids[0]}: {ex.Message}");
                return written;
            }

            written = ids[^1];
            Interlocked.Exchange(ref progress.Value, written);
            try
            {
                await Task.Delay(1, stop); // pacing, so the writer leaves the host some of the machine's two cores
            }
            catch (OperationCanceledException)
            {
            }
        }

        return written;
    }

    /// <summary>
    /// Runs the pure steps a payload goes through in the listener and the fan-out (parse, encode): an exception other
    /// than the documented <see cref="FormatException"/> names the payload as a suspect for whatever broke the host.
    /// </summary>
    private static void CheckPayload(FuzzEvidence evidence, int index, string payload)
    {
        try
        {
            if (PgNotify.Internal.PgChangePayload.Parse(payload, DateTimeOffset.UtcNow).Change is { } change)
            {
                PgNotify.WebSockets.Internal.Frames.Change(change, new System.Buffers.ArrayBufferWriter<byte>());
            }
        }
        catch (FormatException)
        {
            // Documented: the listener logs it and drops the payload.
        }
        catch (Exception ex)
        {
            var message = ex.Message.Split('\n')[0];
            evidence.Suspect(ex.GetType().Name + " " + ex.TargetSite?.Name,
                $"notify#{index}: {ex.GetType().Name} ({(message.Length > 160 ? message[..160] + "…" : message)}) from {(payload.Length > 300 ? payload[..300] + "…" : payload)}");
        }
    }

    /// <summary>Whether the writer's row <paramref name="id"/> holds a jsonb document nested 65 to 200 levels deep.</summary>
    private static bool IsDeep(long id) => id % 50 == 0;

    private static async Task DrainAsync(TestSocket socket)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while ((await socket.Socket.ReceiveAsync(buffer, CancellationToken.None)).MessageType != System.Net.WebSockets.WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    public sealed record FuzzContext(WebHost Host, string Table, string Channel, FuzzEvidence Evidence, Bystander Bystander, StrongBox<long> Written);
}
