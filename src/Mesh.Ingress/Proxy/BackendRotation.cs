using System.Net;

namespace Mesh.Ingress.Proxy;

/// <summary>
/// Round robin over a port's backends, as the L4 dataplanes do (nftables <c>numgen inc</c>, IPVS <c>rr</c>): each new
/// connection or UDP flow takes the next one. The list is swapped whole when the state changes: a removed backend
/// gets no new connection from that moment, and connections already made keep their socket (they drain).
/// </summary>
public sealed class BackendRotation
{
    private IReadOnlyList<IPEndPoint> _backends;
    private uint _next;

    public BackendRotation(IReadOnlyList<IPEndPoint> backends) => _backends = backends ?? throw new ArgumentNullException(nameof(backends));

    public IReadOnlyList<IPEndPoint> Backends => Volatile.Read(ref _backends);

    public void Replace(IReadOnlyList<IPEndPoint> backends) => Volatile.Write(ref _backends, backends ?? throw new ArgumentNullException(nameof(backends)));

    /// <summary>The next backend, or null when the service has none (the caller refuses the client).</summary>
    public IPEndPoint? Next()
    {
        var backends = Volatile.Read(ref _backends);
        if (backends.Count == 0)
        {
            return null;
        }

        var n = Interlocked.Increment(ref _next) - 1;
        return backends[(int)(n % (uint)backends.Count)];
    }
}
