using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Tests.Store.Etcd;

/// <summary>
/// A loopback TCP forwarder standing between a store and etcd, to drop streams on purpose: <see cref="CutAll"/>
/// closes every open connection; while <see cref="Hold"/> is on, new connections are accepted but not forwarded.
/// </summary>
public sealed class CuttableProxy : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private TaskCompletionSource _released = Released();

    public CuttableProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _ = AcceptLoopAsync();
    }

    public Uri Url => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/");

    public int Connections { get; private set; }

    public void Hold()
    {
        lock (_open)
        {
            if (_released.Task.IsCompleted)
            {
                _released = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public void Release()
    {
        lock (_open)
        {
            _released.TrySetResult();
        }
    }

    public void CutAll()
    {
        lock (_open)
        {
            foreach (var c in _open)
            {
                if (c.Client is { } socket)
                {
                    socket.LingerState = new LingerOption(true, 0); // RST, like a member dying
                }

                c.Dispose();
            }

            _open.Clear();
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }

            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        Task released;
        TcpClient? upstream = null;
        lock (_open)
        {
            _open.Add(client);
            Connections++;
            released = _released.Task;
        }

        try
        {
            await released.WaitAsync(_stop.Token);
            upstream = new TcpClient();
            await upstream.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            lock (_open)
            {
                _open.Add(upstream);
            }

            var a = client.GetStream();
            var b = upstream.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception)
        {
            // cut, refused or stopped: the client sees its connection close
        }
        finally
        {
            lock (_open)
            {
                _open.Remove(client);
                if (upstream is not null)
                {
                    _open.Remove(upstream);
                }
            }

            client.Dispose();
            upstream?.Dispose();
        }
    }

    private static TaskCompletionSource Released()
    {
        var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        tcs.SetResult();
        return tcs;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        CutAll();
        _stop.Dispose();
    }
}
