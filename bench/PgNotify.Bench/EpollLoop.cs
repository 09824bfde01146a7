using System.Runtime.InteropServices;

namespace PgNotify.Bench;

/// <summary>
/// One thread that receives for every client through Linux's epoll: a socket with data is read until it has none left
/// (non-blocking receives), its frames parsed in place. No task, continuation or thread-pool hop per receive, so the
/// clients cost less than the server they measure. Sockets given to it must never have used .NET's async socket
/// operations (their handshake is synchronous), or .NET's own epoll thread would wake for them too.
/// </summary>
internal sealed partial class EpollLoop : IDisposable
{
    private const int EpollCtlAdd = 1;
    private const int EpollCtlDel = 2;
    private const uint EpollIn = 0x001;

    private readonly int _epoll;
    private readonly List<LeanClient> _clients = [];
    private readonly Thread _thread;
    private volatile bool _stopping;

    public EpollLoop()
    {
        _epoll = EpollCreate1(0);
        if (_epoll < 0)
        {
            throw new IOException($"epoll_create1 failed: errno {Marshal.GetLastPInvokeError()}");
        }

        _thread = new Thread(Run) { IsBackground = true, Name = "bench epoll" };
        _thread.Start();
    }

    public void Add(LeanClient client)
    {
        int index;
        lock (_clients)
        {
            index = _clients.Count;
            _clients.Add(client);
        }

        var ev = new EpollEvent { Events = EpollIn, Data = (ulong)index };
        if (EpollCtl(_epoll, EpollCtlAdd, client.Fd, ref ev) != 0)
        {
            throw new IOException($"epoll_ctl failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    private void Run()
    {
        var events = new EpollEvent[256];
        while (!_stopping)
        {
            var n = EpollWait(_epoll, events, events.Length, 100);
            for (var i = 0; i < n; i++)
            {
                LeanClient client;
                lock (_clients)
                {
                    client = _clients[(int)events[i].Data];
                }

                if (!client.ReceiveAvailable())
                {
                    var none = default(EpollEvent);
                    _ = EpollCtl(_epoll, EpollCtlDel, client.Fd, ref none);
                }
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread.Join();
        _ = Close(_epoll);
    }

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epoll, int op, int fd, ref EpollEvent ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epoll, [Out] EpollEvent[] events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
