using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Creates sockets inside another network namespace (e.g. /run/netns/mesh-web.1 or /proc/PID/ns/net) through
/// <see cref="NetworkNamespace.Run{T}(string, Func{T})"/>, Mesh's one way into a namespace: a dedicated thread enters
/// it, creates and binds the socket, and ends. A socket belongs to the namespace it was created in for its whole
/// life, so it keeps serving that namespace from any thread. Failing to enter throws
/// <see cref="NetworkNamespaceException"/> (an <see cref="IOException"/>). Needs CAP_SYS_ADMIN (root).
/// </summary>
public static class NetworkNamespaceSockets
{
    /// <summary>A UDP socket bound to <paramref name="bind"/> inside the namespace (port 0: the kernel picks one).</summary>
    public static Socket CreateUdp(string netnsPath, IPEndPoint bind) =>
        NetworkNamespace.Run(netnsPath, () =>
        {
            var s = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                s.Bind(bind);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });

    /// <summary>A listening TCP socket bound to <paramref name="bind"/> inside the namespace.</summary>
    public static Socket CreateTcpListener(string netnsPath, IPEndPoint bind, int backlog = 128) =>
        NetworkNamespace.Run(netnsPath, () =>
        {
            var s = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
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

    /// <summary>An unbound socket created inside the namespace.</summary>
    public static Socket CreateSocket(string netnsPath, AddressFamily family, SocketType type, ProtocolType protocol) =>
        NetworkNamespace.Run(netnsPath, () => new Socket(family, type, protocol));

    /// <summary>
    /// A <see cref="DnsSocketFactory"/> that creates upstream sockets inside the namespace (for
    /// <see cref="EmbeddedDnsServerOptions.UpstreamSocketFactory"/>, when upstreams must be reached from the task's
    /// network). Each socket costs a short-lived thread.
    /// </summary>
    public static DnsSocketFactory SocketFactoryFor(string netnsPath) => (f, t, p) => CreateSocket(netnsPath, f, t, p);
}
