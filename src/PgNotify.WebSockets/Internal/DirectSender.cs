using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace PgNotify.WebSockets.Internal;

/// <summary>
/// Sends on a connection's socket with event args rented from a pool shared by every socket, as Kestrel's own sender
/// does. <see cref="Socket.SendAsync(ReadOnlyMemory{byte}, SocketFlags, CancellationToken)"/> would keep event args
/// of its own on each socket it is ever used on (about 0.8 KB per idle socket); a send that completes at once, the
/// usual case, runs the <c>send</c> on the calling thread and allocates nothing.
/// </summary>
internal sealed class DirectSender : SocketAsyncEventArgs, IValueTaskSource<int>
{
    private const int MaxPooled = 64;
    private static readonly ConcurrentQueue<DirectSender> Pool = new();
    private static int _pooled;
    private ManualResetValueTaskSourceCore<int> _source = new() { RunContinuationsAsynchronously = true };

    private DirectSender()
        : base(unsafeSuppressExecutionContextFlow: true)
    {
    }

    /// <summary>Sends all of <paramref name="buffer"/> on <paramref name="socket"/>.</summary>
    /// <exception cref="SocketException">The send failed (the connection is gone).</exception>
    public static async ValueTask SendAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        var sender = Pool.TryDequeue(out var pooled) ? pooled : new DirectSender();
        if (pooled is not null)
        {
            Interlocked.Decrement(ref _pooled);
        }

        var reusable = false;
        try
        {
            // A send on a stream socket completes when all of it is sent; the loop only guards against a short count.
            while (!buffer.IsEmpty)
            {
                var sent = await sender.SendOnceAsync(socket, buffer).ConfigureAwait(false);
                buffer = buffer[sent..];
            }

            reusable = true;
        }
        finally
        {
            sender.SetBuffer(Memory<byte>.Empty); // do not keep the caller's (pooled) array
            if (reusable && Interlocked.Increment(ref _pooled) <= MaxPooled)
            {
                Pool.Enqueue(sender);
            }
            else
            {
                if (reusable)
                {
                    Interlocked.Decrement(ref _pooled);
                }

                sender.Dispose();
            }
        }
    }

    private ValueTask<int> SendOnceAsync(Socket socket, ReadOnlyMemory<byte> buffer)
    {
        SetBuffer(MemoryMarshal.AsMemory(buffer));
        _source.Reset();
        if (socket.SendAsync(this))
        {
            return new ValueTask<int>(this, _source.Version);
        }

        return SocketError == SocketError.Success
            ? new ValueTask<int>(BytesTransferred)
            : ValueTask.FromException<int>(new SocketException((int)SocketError));
    }

    protected override void OnCompleted(SocketAsyncEventArgs e)
    {
        if (SocketError == SocketError.Success)
        {
            _source.SetResult(BytesTransferred);
        }
        else
        {
            _source.SetException(new SocketException((int)SocketError));
        }
    }

    int IValueTaskSource<int>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
