using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime;
using System.Text;
using Npgsql;
using PgNotify;

// The server side of the benchmarks, one process per run so its CPU time and RSS can be read from /proc/<pid>/stat.
//
//   --mode pgnotify   PgNotify as an app uses it: AddPgNotify + UsePgChangeWebSockets, clients subscribe with ?tables=
//   --mode baseline   the plain hand-written approach: one LISTEN loop, a ConcurrentDictionary of sockets,
//                     foreach + await SendAsync of the trigger's payload. Same trigger SQL (PgNotifyInstaller).
//   --mode floor      no PostgreSQL, no Kestrel: raw TCP sockets, a minimal upgrade answer, then one pre-built small
//                     frame per row written to every socket at the scenario's pace. The physical limit of the sender.
//
// Prints "READY" when it accepts connections. The floor sender starts on a "go" line on stdin and prints "DONE".
var mode = Arg("--mode") ?? "pgnotify";
var port = int.Parse(Arg("--port") ?? "5190");
var connectionString = Arg("--connection") ?? "Host=127.0.0.1;Port=54329;Username=postgres;Database=postgres";
var table = Arg("--table") ?? "bench_rows";

if (mode == "floor")
{
    await FloorSender.RunAsync(port, double.Parse(Arg("--rate") ?? "0"), long.Parse(Arg("--rows") ?? "0"), int.Parse(Arg("--pad") ?? "0"));
    return;
}

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
if (Environment.GetEnvironmentVariable("BENCH_KESTREL_INLINE") == "1")
{
    // Kestrel's sends run on the thread that flushes instead of its I/O queues (same for every mode).
    builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
}
builder.Logging.ClearProviders();
builder.Logging.AddConsole().SetMinimumLevel(LogLevel.Warning);

if (mode == "pgnotify")
{
    builder.Services.AddPgNotify(
        o =>
        {
            o.ConnectionString = connectionString;
            o.Tables.Add(table);
            o.Tables.Add("bench_snap"); // scenario SN's snapshots (the driver creates it with 10,000 rows)
        },
        ws =>
        {
            // The default is 10,000 sockets per instance; scenario D holds 20,000.
            ws.MaxConnections = 100_000;
            ws.MaxConnectionsPerClient = 100_000; // every bench client connects from one loopback address
        });
}

var app = builder.Build();

// GC'd heap and RSS on demand, for the idle-socket memory figures.
app.MapGet("/bench/gc", () =>
{
    GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    GC.WaitForPendingFinalizers();
    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
    return Results.Text($"{GC.GetTotalMemory(false)} {Environment.WorkingSet}");
});

// The heap by generation after the last GC (gen0, gen1, gen2, LOH, POH, then fragmentation), to see where a figure lies.
app.MapGet("/bench/gcinfo", () =>
{
    var info = GC.GetGCMemoryInfo();
    var sizes = Enumerable.Range(0, info.GenerationInfo.Length).Select(g => info.GenerationInfo[g].SizeAfterBytes);
    return Results.Text($"{string.Join(' ', sizes)} frag {info.FragmentedBytes} total {GC.GetTotalMemory(false)}");
});

// PgNotify's own counters of frames sent and writes made, to show how many frames went out per write.
long framesSent = 0, writesMade = 0, directSockets = 0, pipeSockets = 0;
using var meterListener = new System.Diagnostics.Metrics.MeterListener();
meterListener.InstrumentPublished = (instrument, listener) =>
{
    if (instrument.Meter.Name == "PgNotify" && instrument.Name is "pgnotify.websocket.frames_sent" or "pgnotify.websocket.writes" or "pgnotify.websocket.write_paths")
    {
        listener.EnableMeasurementEvents(instrument);
    }
};
meterListener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
{
    if (instrument.Name == "pgnotify.websocket.write_paths")
    {
        Interlocked.Add(ref tags[0].Value as string == "direct" ? ref directSockets : ref pipeSockets, value);
    }
    else if (instrument.Name == "pgnotify.websocket.writes")
    {
        Interlocked.Add(ref writesMade, value);
    }
    else
    {
        Interlocked.Add(ref framesSent, value);
    }
});
meterListener.Start();
app.MapGet("/bench/writes", () => Results.Text($"{Interlocked.Read(ref framesSent)} {Interlocked.Read(ref writesMade)}"));
app.MapGet("/bench/paths", () => Results.Text($"{Interlocked.Read(ref directSockets)} {Interlocked.Read(ref pipeSockets)}"));

if (mode == "pgnotify")
{
    app.UsePgChangeWebSockets(); // /ws/changes/
}
else if (mode == "baseline")
{
    await Baseline.InstallAsync(connectionString, table);
    app.UseWebSockets();
    app.Map("/ws", Baseline.AcceptAsync);
    _ = Task.Run(() => Baseline.ListenLoopAsync(connectionString, app.Lifetime.ApplicationStopping));
}
else
{
    throw new ArgumentException($"unknown --mode {mode}");
}

app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine("READY"));
await app.RunAsync();

string? Arg(string name)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>What a developer writes by hand without PgNotify: the obvious LISTEN loop and broadcast.</summary>
internal static class Baseline
{
    private static readonly ConcurrentDictionary<Guid, WebSocket> Sockets = new();
    private static readonly byte[] Subscribed = """{"type":"subscribed","id":null,"tables":["bench_rows"]}"""u8.ToArray();

    public static async Task InstallAsync(string connectionString, string table)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var installer = new PgNotifyInstaller(dataSource);
        await installer.InstallAsync();
        await installer.EnableTableAsync(PgTableName.Parse(table));
    }

    public static async Task AcceptAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = 400;
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        await socket.SendAsync(Subscribed, WebSocketMessageType.Text, true, context.RequestAborted);
        var id = Guid.NewGuid();
        Sockets[id] = socket;
        var buffer = new byte[1024];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var result = await socket.ReceiveAsync(buffer, context.RequestAborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
        }
        finally
        {
            Sockets.TryRemove(id, out _);
        }
    }

    public static async Task ListenLoopAsync(string connectionString, CancellationToken stopping)
    {
        await using var listen = new NpgsqlConnection(connectionString + ";Pooling=false;KeepAlive=30");
        await using var side = new NpgsqlConnection(connectionString + ";Pooling=false");
        await listen.OpenAsync(stopping);
        await side.OpenAsync(stopping);
        var pending = new Queue<string>();
        listen.Notification += (_, e) => pending.Enqueue(e.Payload);
        await using (var cmd = new NpgsqlCommand("LISTEN db_changes", listen))
        {
            await cmd.ExecuteNonQueryAsync(stopping);
        }

        while (!stopping.IsCancellationRequested)
        {
            await listen.WaitAsync(stopping);
            while (pending.TryDequeue(out var payload))
            {
                // Rows too large for NOTIFY are parked by the trigger: fetch them (as PgNotify does).
                if (payload.Contains("\"ref\"", StringComparison.Ordinal))
                {
                    var id = long.Parse(payload[(payload.IndexOf("\"ref\" : ", StringComparison.Ordinal) + 8)..].TrimEnd('}', ' '));
                    await using var fetch = new NpgsqlCommand("SELECT payload FROM pgnotify.large_payload WHERE id = $1", side);
                    fetch.Parameters.Add(new NpgsqlParameter<long> { TypedValue = id });
                    payload = (string)(await fetch.ExecuteScalarAsync(stopping))!;
                }

                var bytes = Encoding.UTF8.GetBytes(payload);
                foreach (var (key, socket) in Sockets)
                {
                    try
                    {
                        await socket.SendAsync(bytes, WebSocketMessageType.Text, true, stopping);
                    }
                    catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
                    {
                        Sockets.TryRemove(key, out _);
                    }
                }
            }
        }
    }
}

/// <summary>The physical limit: one pre-built small frame per row, written with plain Socket.Send to every socket.</summary>
internal static class FloorSender
{
    public static async Task RunAsync(int port, double rate, long rows, int pad)
    {
        var sockets = new List<Socket>();
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listener.Listen(4096);
        var upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: floor\r\n\r\n"u8.ToArray();
        var subscribed = Frame("""{"type":"subscribed","id":null,"tables":["bench_rows"]}"""u8);
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            var request = new byte[4096];
            while (!stop.IsCancellationRequested)
            {
                var socket = await listener.AcceptAsync(stop.Token);
                socket.NoDelay = true;
                var read = 0;
                while (read < 4 || !request.AsSpan(0, read).EndsWith("\r\n\r\n"u8))
                {
                    read += await socket.ReceiveAsync(request.AsMemory(read), SocketFlags.None, stop.Token);
                }

                socket.Send(upgrade);
                socket.Send(subscribed);
                lock (sockets)
                {
                    sockets.Add(socket);
                }
            }
        });
        Console.WriteLine("READY");
        if (Console.ReadLine() != "go")
        {
            return;
        }

        Socket[] targets;
        lock (sockets)
        {
            targets = [.. sockets];
        }

        var padding = new string('x', pad);
        var interval = rate > 0 ? System.Diagnostics.Stopwatch.Frequency / rate : 0;
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        for (long i = 0; i < rows; i++)
        {
            var due = start + (long)(i * interval);
            var wait = System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                Thread.Sleep(wait);
            }

            // The same shape and size as a PgNotify change frame for the bench row.
            var sent = System.Diagnostics.Stopwatch.GetTimestamp();
            var json = $$$"""{"type":"change","schema":"public","table":"bench_rows","operation":"INSERT","xid":1234567,"seq":1,"ts":"2026-01-01T00:00:00.000000+00:00","data":{"bench_seq":{{{i}}},"bench_sent":{{{sent}}},"pad":"{{{padding}}}"}}""";
            var frame = Frame(Encoding.UTF8.GetBytes(json));
            foreach (var socket in targets)
            {
                socket.Send(frame);
            }
        }

        Console.WriteLine("DONE");
        Console.ReadLine();
        await stop.CancelAsync();
        foreach (var socket in targets)
        {
            socket.Dispose();
        }

        _ = accepting;
    }

    private static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var header = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var frame = new byte[header + payload.Length];
        frame[0] = 0x81; // FIN + text
        if (header == 2)
        {
            frame[1] = (byte)payload.Length;
        }
        else if (header == 4)
        {
            frame[1] = 126;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = 127;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        }

        payload.CopyTo(frame.AsSpan(header));
        return frame;
    }
}
