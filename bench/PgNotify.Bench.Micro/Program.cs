using System.Buffers;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using PgNotify;
using PgNotify.Internal;
using PgNotify.WebSockets.Internal;

// dotnet run -c Release --project bench/PgNotify.Bench.Micro -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(HotPaths).Assembly).Run(args);

/// <summary>
/// The per-change hot paths of the fan-out. Parsing and encoding call PgNotify's own internal code (the src projects
/// grant this assembly InternalsVisibleTo); routing replicates RouteChange/EnqueueLive, since a real SocketSession
/// needs a WebSocket.
/// </summary>
[MemoryDiagnoser]
public class HotPaths
{
    // What the trigger sends for the bench row (json_build_object(...)::text: " : " separators, jsonb's key order).
    private const string Payload =
        """{"v" : 1, "schema" : "public", "table" : "bench_rows", "op" : "INSERT", "xid" : 1234567, "seq" : 1, "ts" : "2026-11-25T23:05:10.566174+00:00", "data" : {"pad": "", "bench_seq": 12345, "bench_sent": 987654321012345}, "old" : null}""";

    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private PgChange _change = null!;
    private Route[] _routes = [];
    private byte[] _frame = [];
    private readonly List<FakeSession> _toStart = [];

    [Params(100, 1000)]
    public int Sockets { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _change = Parse(Payload);
        _frame = Encode(_change, _buffer);
        _routes = [.. Enumerable.Range(0, Sockets).Select(_ => new Route(new FakeSession(), 1 << (int)PgChangeOperation.Insert))];
    }

    /// <summary>src/PgNotify.Core/Internal/PgChangePayload.cs: one Utf8JsonReader pass; the rows stay text.</summary>
    [Benchmark(Description = "payload parse (PgChangePayload.Parse)")]
    public PgChange ParsePayload() => Parse(Payload);

    /// <summary>src/PgNotify.WebSockets/Internal/Frames.cs Change(): Utf8JsonWriter into a reused buffer, the row compacted from its text (RowText), then ToArray.</summary>
    [Benchmark(Description = "frame encode (Frames.Change)")]
    public byte[] EncodeFrame() => Encode(_change, _buffer);

    /// <summary>What one change costs from its payload to its frame: Parse, then Frames.Change of a change never parsed into a document.</summary>
    [Benchmark(Description = "payload to frame (Parse + Frames.Change)")]
    public byte[] PayloadToFrame() => Encode(Parse(Payload), _buffer);

    /// <summary>
    /// The same before issue 15, for comparison: JsonDocument.Parse of the payload, the fields read with TryGetProperty,
    /// a Clone of data, and the frame written with JsonElement.WriteTo (what PgChangePayload.Parse and Frames.Change did).
    /// </summary>
    [Benchmark(Description = "payload to frame, previous path (JsonDocument, Clone, WriteTo)")]
    public byte[] PayloadToFrameWithDocument()
    {
        using var document = JsonDocument.Parse(Payload);
        var root = document.RootElement;
        var schema = root.GetProperty("schema").GetString()!;
        var table = root.GetProperty("table").GetString()!;
        var operation = root.GetProperty("op").GetString()!;
        var xid = root.GetProperty("xid").GetInt64();
        var seq = root.GetProperty("seq").GetInt64();
        var ts = root.GetProperty("ts").GetDateTimeOffset();
        var data = root.GetProperty("data").Clone();
        _ = root.TryGetProperty("old", out _);
        _buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true, MaxDepth = int.MaxValue }))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "change"u8);
            w.WriteString("schema"u8, schema);
            w.WriteString("table"u8, table);
            w.WriteString("operation"u8, operation);
            w.WriteNumber("xid"u8, xid);
            w.WriteNumber("seq"u8, seq);
            w.WriteString("ts"u8, ts);
            w.WritePropertyName("data"u8);
            data.WriteTo(w);
            w.WriteEndObject();
        }

        return _buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// PgChangeRouter.RouteChange + SocketSession.EnqueueLive: per route, the operation mask test, the pending-count
    /// Interlocked.Increment against the queue capacity, the Outbound item added to the socket's queue under its lock,
    /// and the session noted once in the router's list of sessions to start writing. Then, per session, what the writer
    /// does before its write: take the items off the queue under the lock. The write itself is not included.
    /// </summary>
    [Benchmark(Description = "route to N sockets (RouteChange/EnqueueLive replica)")]
    public void RouteToSockets()
    {
        foreach (var route in _routes)
        {
            if ((route.Operations & (1 << (int)_change.Operation)) == 0)
            {
                continue;
            }

            route.Session.Enqueue(_frame, _change);
            if (!route.Session.PendingStart)
            {
                route.Session.PendingStart = true;
                _toStart.Add(route.Session);
            }
        }

        foreach (var session in _toStart)
        {
            session.PendingStart = false;
            session.Drain();
        }

        _toStart.Clear();
    }

    private static PgChange Parse(string payload) => PgChangePayload.Parse(payload, DateTimeOffset.UtcNow).Change!;

    private static byte[] Encode(PgChange change, ArrayBufferWriter<byte> buffer) => Frames.Change(change, buffer);

    private readonly record struct Route(FakeSession Session, int Operations);

    private readonly record struct Outbound(byte[]? Frame, DateTimeOffset? Timestamp, int Kind, string? Type = null);

    private sealed class FakeSession
    {
        private readonly Queue<Outbound> _queue = new();
        private readonly Lock _gate = new();
        private int _pending;

        public bool PendingStart { get; set; }

        public void Enqueue(byte[] frame, PgChange change)
        {
            if (Interlocked.Increment(ref _pending) > 1_000)
            {
                Interlocked.Decrement(ref _pending);
                return;
            }

            lock (_gate)
            {
                _queue.Enqueue(new Outbound(frame, change.Timestamp, 0));
            }
        }

        public void Drain()
        {
            while (true)
            {
                lock (_gate)
                {
                    if (!_queue.TryDequeue(out _))
                    {
                        return;
                    }
                }

                Interlocked.Decrement(ref _pending);
            }
        }
    }
}
