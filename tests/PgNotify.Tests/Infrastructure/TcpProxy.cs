using System.Net;
using System.Net.Sockets;

namespace PgNotify.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy that can black-hole its open connections (stop forwarding while keeping the sockets open),
/// which is what a half-open connection looks like to the listener: no error, no data, ever.
/// New connections after <see cref="BlackholeExisting"/> are forwarded normally.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly string _targetHost;
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Link> _links = [];
    private readonly Lock _gate = new();
    private readonly Task _acceptLoop;

    public TcpProxy(string targetHost, int targetPort)
    {
        _targetHost = targetHost;
        _targetPort = targetPort;
        _listener.Start();
        _acceptLoop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public int ConnectionCount
    {
        get
        {
            lock (_gate)
            {
                return _links.Count;
            }
        }
    }

    public void BlackholeExisting()
    {
        lock (_gate)
        {
            foreach (var link in _links)
            {
                link.Blackholed = true;
            }
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            var server = new TcpClient();
            await server.ConnectAsync(_targetHost, _targetPort);
            var link = new Link(client, server);
            lock (_gate)
            {
                _links.Add(link);
            }

            _ = PumpAsync(link, client.GetStream(), server.GetStream());
            _ = PumpAsync(link, server.GetStream(), client.GetStream());
        }
    }

    private async Task PumpAsync(Link link, NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, _stop.Token);
                if (read == 0)
                {
                    break;
                }

                if (link.Blackholed)
                {
                    continue; // swallowed: the peer never hears back, and never hears an error either
                }

                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // A closed side ends the link.
        }

        if (!link.Blackholed)
        {
            link.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_gate)
        {
            foreach (var link in _links)
            {
                link.Close();
            }
        }

        await _acceptLoop;
        _stop.Dispose();
    }

    private sealed class Link(TcpClient client, TcpClient server)
    {
        public volatile bool Blackholed;

        public void Close()
        {
            client.Dispose();
            server.Dispose();
        }
    }
}
