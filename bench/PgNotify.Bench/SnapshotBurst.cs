using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace PgNotify.Bench;

/// <summary>
/// Scenario SN's burst: sockets that each ask for a snapshot of <c>bench_snap</c> at the same moment (while L's writes
/// run), read until their <c>snapshot_end</c>, and report when the last one arrived. Only <c>snapshot_end</c> frames are
/// parsed, so the clients spend little CPU on the rows.
/// </summary>
internal sealed class SnapshotBurst : IAsyncDisposable
{
    public const string Table = "bench_snap";
    public const int TableRows = 10_000;

    private readonly ClientWebSocket[] _sockets;

    private SnapshotBurst(ClientWebSocket[] sockets) => _sockets = sockets;

    /// <summary>Connects the sockets (not timed) and reads their welcome frames.</summary>
    public static async Task<SnapshotBurst> ConnectAsync(int port, int count)
    {
        var sockets = await Task.WhenAll(Enumerable.Range(0, count).Select(async _ =>
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/ws/changes/"), CancellationToken.None);
            var buffer = new byte[4096];
            await socket.ReceiveAsync(buffer, CancellationToken.None); // welcome
            return socket;
        }));
        return new SnapshotBurst(sockets);
    }

    /// <summary>Every socket asks at once; completes when every <c>snapshot_end</c> arrived. Returns (seconds, rows).</summary>
    public async Task<(double Seconds, long Rows, int Failed)> RunAsync(TimeSpan timeout)
    {
        var request = Encoding.UTF8.GetBytes($$"""{"type":"subscribe","id":1,"tables":["{{Table}}"],"snapshot":true}""");
        var start = Stopwatch.GetTimestamp();
        using var cts = new CancellationTokenSource(timeout);
        var results = await Task.WhenAll(_sockets.Select(async socket =>
        {
            await socket.SendAsync(request, WebSocketMessageType.Text, true, cts.Token);
            var buffer = new byte[256 * 1024];
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        Array.Resize(ref buffer, buffer.Length * 2);
                    }

                    result = await socket.ReceiveAsync(buffer.AsMemory(length), cts.Token);
                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (buffer.AsSpan(0, length).StartsWith("""{"type":"snapshot_end","""u8))
                {
                    using var end = JsonDocument.Parse(buffer.AsMemory(0, length));
                    return (Rows: end.RootElement.GetProperty("count").GetInt64(), Failed: 0, At: Stopwatch.GetTimestamp());
                }

                if (buffer.AsSpan(0, length).StartsWith("""{"type":"error","""u8))
                {
                    Console.Error.WriteLine("    snapshot error: " + Encoding.UTF8.GetString(buffer, 0, length));
                    return (Rows: 0L, Failed: 1, At: Stopwatch.GetTimestamp());
                }
            }
        }));
        var last = results.Max(r => r.At);
        return (Stopwatch.GetElapsedTime(start, last).TotalSeconds, results.Sum(r => r.Rows), results.Sum(r => r.Failed));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var socket in _sockets)
        {
            socket.Abort();
            socket.Dispose();
        }

        await Task.CompletedTask;
    }
}
