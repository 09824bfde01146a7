using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using PgNotify.Tests.Infrastructure;

namespace PgNotify.Tests.Fuzz;

/// <summary>
/// A well-behaved client subscribed to the real table for the whole fuzz run. It counts every real row by the
/// writer's tag (forged rows that reach it are counted apart: live mode lets a forged notification inject a row)
/// and every resync it is sent.
/// </summary>
public sealed class Bystander : IAsyncDisposable
{
    private readonly TestSocket _socket;
    private readonly string _tagPrefix;
    private readonly Task _loop;
    private readonly ConcurrentDictionary<long, int> _seen = new();
    private readonly ConcurrentQueue<string> _resyncs = new();
    private readonly ConcurrentQueue<string> _problems = new();
    private long _forged;

    private Bystander(TestSocket socket, string tagPrefix)
    {
        _socket = socket;
        _tagPrefix = tagPrefix;
        _loop = Task.Run(ReadAsync);
    }

    public IReadOnlyDictionary<long, int> Seen => _seen;

    public IReadOnlyCollection<string> Resyncs => _resyncs;

    public IReadOnlyCollection<string> Problems => _problems;

    public long Forged => Interlocked.Read(ref _forged);

    public string? Ended { get; private set; }

    public static async Task<Bystander> StartAsync(Uri socketUri, string table, string tagPrefix)
    {
        var socket = await TestSocket.ConnectAsync(socketUri);
        await socket.SubscribeAsync(table);
        return new Bystander(socket, tagPrefix);
    }

    /// <summary>Waits until the rows 1..<paramref name="written"/> have all arrived, or the time is up.</summary>
    public async Task<bool> WaitForAsync(long written, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && Ended is null)
        {
            if (_seen.Count >= written)
            {
                return true;
            }

            await Task.WhenAny(_loop, Task.Delay(50));
        }

        return _seen.Count >= written;
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[256 * 1024];
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    Array.Resize(ref buffer, buffer.Length * 2);
                }

                var result = await _socket.Socket.ReceiveAsync(buffer.AsMemory(length), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Ended = $"the server closed the bystander: {_socket.Socket.CloseStatus} {_socket.Socket.CloseStatusDescription}";
                    return;
                }

                length += result.Count;
                if (!result.EndOfMessage)
                {
                    continue;
                }

                Handle(buffer.AsMemory(0, length));
                length = 0;
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Ended ??= "the bystander's socket failed: " + ex.Message;
        }
    }

    private void Handle(ReadOnlyMemory<byte> frame)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(frame, new JsonDocumentOptions { MaxDepth = int.MaxValue });
        }
        catch (JsonException ex)
        {
            _problems.Enqueue("the bystander got a frame that is not JSON: " + ex.Message);
            return;
        }

        using var _ = document;
        var root = document.RootElement;
        switch (root.GetProperty("type").GetString())
        {
            case "change":
                if (root.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
                    && data.TryGetProperty("tag", out var tag) && tag.ValueKind == JsonValueKind.String
                    && tag.GetString() is { } text && text.StartsWith(_tagPrefix, StringComparison.Ordinal)
                    && long.TryParse(text.AsSpan(_tagPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    _seen.AddOrUpdate(id, 1, (_, n) => n + 1);
                }
                else
                {
                    Interlocked.Increment(ref _forged);
                }

                break;
            case "resync":
                _resyncs.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {root}");
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Socket.Abort();
        await _loop;
        await _socket.DisposeAsync();
    }
}
