using System.Buffers;
using System.Text.Json;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using PgNotify;

// dotnet run -c Release --project bench/PgNotify.Bench.Micro -- --filter '*' --job short
BenchmarkSwitcher.FromAssembly(typeof(HotPaths).Assembly).Run(args);

/// <summary>
/// The per-change hot paths of the fan-out. PgNotify's own implementations are internal; each benchmark replicates
/// the exact calls of the file named in its description (same JSON APIs, same options, same payload shape as the
/// bench row and as the trigger writes it).
/// </summary>
[MemoryDiagnoser]
public class HotPaths
{
    // What the trigger sends for the bench row (json_build_object(...)::text: " : " separators, jsonb's key order).
    private const string Payload =
        """{"v" : 1, "schema" : "public", "table" : "bench_rows", "op" : "INSERT", "xid" : 1234567, "seq" : 1, "ts" : "2026-11-25T23:05:10.566174+00:00", "data" : {"pad": "", "bench_seq": 12345, "bench_sent": 987654321012345}, "old" : null}""";

    private static readonly JsonWriterOptions WriterOptions = new() { SkipValidation = true };
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
    [Benchmark(Description = "payload parse (PgChangePayload.Parse replica)")]
    public PgChange ParsePayload() => Parse(Payload);

    /// <summary>src/PgNotify.WebSockets/Internal/Frames.cs Change(): Utf8JsonWriter into a reused buffer, then ToArray.</summary>
    [Benchmark(Description = "frame encode (Frames.Change replica)")]
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

    private static PgChange Parse(string payload)
    {
        using var doc = JsonDocument.Parse(payload);
        var root = doc.RootElement;
        if (!root.TryGetProperty("v", out var version) || version.GetInt32() != 1)
        {
            throw new FormatException();
        }

        if (root.TryGetProperty("ref", out var reference) && reference.ValueKind == JsonValueKind.Number)
        {
            throw new FormatException();
        }

        var table = new PgTableName(root.GetProperty("schema").GetString()!, root.GetProperty("table").GetString()!);
        var operation = root.GetProperty("op").GetString() switch
        {
            "INSERT" => PgChangeOperation.Insert,
            "UPDATE" => PgChangeOperation.Update,
            "DELETE" => PgChangeOperation.Delete,
            _ => PgChangeOperation.Truncate,
        };
        return new PgChange(
            table,
            operation,
            OptionalObject(root, "data"),
            OptionalObject(root, "old"),
            root.TryGetProperty("xid", out var xid) && xid.ValueKind == JsonValueKind.Number ? xid.GetInt64() : 0,
            root.TryGetProperty("seq", out var seq) && seq.ValueKind == JsonValueKind.Number ? seq.GetInt64() : 0,
            root.TryGetProperty("ts", out var ts) && ts.ValueKind == JsonValueKind.String && ts.TryGetDateTimeOffset(out var stamp) ? stamp : null,
            root.TryGetProperty("pos", out var pos) && pos.ValueKind == JsonValueKind.Number ? pos.GetInt64() : null,
            DateTimeOffset.UtcNow);
    }

    private static JsonElement? OptionalObject(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object ? value.Clone() : null;

    private static byte[] Encode(PgChange change, ArrayBufferWriter<byte> buffer)
    {
        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("type"u8, "change"u8);
            w.WriteString("schema"u8, change.Table.Schema);
            w.WriteString("table"u8, change.Table.Name);
            w.WriteString("operation"u8, change.Operation switch
            {
                PgChangeOperation.Insert => "INSERT"u8,
                PgChangeOperation.Update => "UPDATE"u8,
                PgChangeOperation.Delete => "DELETE"u8,
                _ => "TRUNCATE"u8,
            });
            if (change.Position is { } position)
            {
                w.WriteNumber("position"u8, position);
            }

            w.WriteNumber("xid"u8, change.TransactionId);
            w.WriteNumber("seq"u8, change.Sequence);
            if (change.Timestamp is { } ts)
            {
                w.WriteString("ts"u8, ts);
            }

            if (change.Data is { } data)
            {
                w.WritePropertyName("data"u8);
                data.WriteTo(w);
            }

            if (change.Old is { } old)
            {
                w.WritePropertyName("old"u8);
                old.WriteTo(w);
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

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
