using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
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

    [Params(100, 1000)]
    public int Sockets { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _change = Parse(Payload);
        _frame = Encode(_change, _buffer);
        _routes = [.. Enumerable.Range(0, Sockets).Select(_ => new Route(new FakeSession(), 1 << (int)PgChangeOperation.Insert))];
    }

    /// <summary>src/PgNotify.Core/Internal/PgChangePayload.cs: JsonDocument.Parse, TryGetProperty, Clone of data/old.</summary>
    [Benchmark(Description = "payload parse (PgChangePayload.Parse)")]
    public PgChange ParsePayload() => Parse(Payload);

    /// <summary>src/PgNotify.WebSockets/Internal/Frames.cs Change(): Utf8JsonWriter into a reused buffer, then ToArray.</summary>
    [Benchmark(Description = "frame encode (Frames.Change)")]
    public byte[] EncodeFrame() => Encode(_change, _buffer);

    /// <summary>
    /// PgChangeRouter.RouteChange + SocketSession.EnqueueLive: per route, the operation mask test, the pending-count
    /// Interlocked.Increment against the queue capacity, and TryWrite of an Outbound item to the socket's unbounded
    /// single-reader channel (drained here, as the writer task would, so the queue does not grow).
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
        }

        foreach (var route in _routes)
        {
            route.Session.Drain();
        }
    }

    private static PgChange Parse(string payload) => PgChangePayload.Parse(payload, DateTimeOffset.UtcNow).Change!;

    private static byte[] Encode(PgChange change, ArrayBufferWriter<byte> buffer) => Frames.Change(change, buffer);

    private readonly record struct Route(FakeSession Session, int Operations);

    private readonly record struct Outbound(byte[]? Frame, DateTimeOffset? Timestamp, int Kind, string? Type = null);

    private sealed class FakeSession
    {
        private readonly Channel<Outbound> _outbound = Channel.CreateUnbounded<Outbound>(new UnboundedChannelOptions { SingleReader = true });
        private int _pending;

        public void Enqueue(byte[] frame, PgChange change)
        {
            if (Interlocked.Increment(ref _pending) > 1_000)
            {
                Interlocked.Decrement(ref _pending);
                return;
            }

            _outbound.Writer.TryWrite(new Outbound(frame, change.Timestamp, 0));
        }

        public void Drain()
        {
            while (_outbound.Reader.TryRead(out _))
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }
}
