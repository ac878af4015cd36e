using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Mesh.Ipvs;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// Sockets of one ingress sandbox namespace: the relay's listeners, and its sockets to tasks (the task addresses are
/// reachable only over the sandbox's overlay leg). A socket is bound to the namespace it was created in, so only
/// creation needs the namespace, and entering it costs a short-lived thread (<see cref="NetworkNamespace.Run{T}"/>):
/// outgoing TCP sockets are therefore made in batches and handed out one per connection. One instance per
/// namespace identity: when the sandbox is recreated the relay makes a new one (pooled sockets of the old namespace
/// are closed with it).
/// </summary>
public sealed class SandboxSockets(string netnsPath) : IDisposable
{
    /// <summary>Sockets made per entry into the namespace: ~0.1 ms of thread start-up shared by this many connections.</summary>
    public const int Batch = 32;

    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    private readonly ConcurrentQueue<Socket> _tcp = new();
    private readonly Lock _refill = new();
    private bool _disposed;

    public string NetnsPath { get; } = netnsPath;

    /// <summary>A listening TCP socket on <paramref name="bind"/> in the sandbox. SO_REUSEADDR only (not SO_REUSEPORT,
    /// which .NET's ReuseAddress would add): a relay reopened after a change binds despite connections in TIME_WAIT.</summary>
    public Socket Listen(IPEndPoint bind, int backlog = 512) => NetworkNamespace.Run(NetnsPath, () =>
    {
        var s = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            s.Bind(bind);
            s.Listen(backlog);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    });

    /// <summary>A UDP socket bound to <paramref name="bind"/> in the sandbox.</summary>
    public Socket BindUdp(IPEndPoint bind) => NetworkNamespaceSockets.CreateUdp(NetnsPath, bind);

    /// <summary>An unconnected UDP socket in the sandbox (one per relayed flow).</summary>
    public Socket NewUdp() => NetworkNamespaceSockets.CreateSocket(NetnsPath, AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

    /// <summary>An unconnected TCP socket in the sandbox, from the pool (refilled <see cref="Batch"/> at a time).</summary>
    public Socket NewTcp()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_tcp.TryDequeue(out var socket))
        {
            return socket;
        }

        lock (_refill)
        {
            if (_tcp.TryDequeue(out socket))
            {
                return socket;
            }

            var made = NetworkNamespace.Run(NetnsPath, () =>
            {
                var batch = new Socket[Batch];
                for (var i = 0; i < batch.Length; i++)
                {
                    batch[i] = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                }

                return batch;
            });
            foreach (var s in made.AsSpan(1))
            {
                _tcp.Enqueue(s);
            }

            return made[0];
        }
    }

    public void Dispose()
    {
        _disposed = true;
        while (_tcp.TryDequeue(out var s))
        {
            s.Dispose();
        }
    }
}
