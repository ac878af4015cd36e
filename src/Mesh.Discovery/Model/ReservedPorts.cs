namespace Mesh.Discovery.Model;

/// <summary>
/// Ports a service may not publish, because publishing redirects the port on every node and the node itself needs
/// it: the DNAT of a published port would take over sshd, the mesh API, etcd or the overlay's own VXLAN traffic.
/// <see cref="Default"/> is the documented list; a daemon adds its own API ports (<see cref="With"/>).
/// </summary>
public sealed class ReservedPorts
{
    private readonly Dictionary<(int Port, TransportProtocol Protocol), string> _reasons;

    private ReservedPorts(Dictionary<(int, TransportProtocol), string> reasons) => _reasons = reasons;

    /// <summary>22/tcp ssh; 2377/tcp the mesh API and --join; 2379-2380/tcp etcd; 4789/udp VXLAN (every overlay);
    /// 7946/tcp+udp overlay gossip (Docker swarm); 10256/tcp the daemon's health port.</summary>
    public static ReservedPorts Default { get; } = Build(
    [
        (22, TransportProtocol.Tcp, "ssh"),
        (2377, TransportProtocol.Tcp, "the mesh API and --join"),
        (2379, TransportProtocol.Tcp, "etcd clients"),
        (2380, TransportProtocol.Tcp, "etcd peers"),
        (4789, TransportProtocol.Udp, "VXLAN of the overlays"),
        (7946, TransportProtocol.Tcp, "overlay gossip"),
        (7946, TransportProtocol.Udp, "overlay gossip"),
        (10256, TransportProtocol.Tcp, "the daemon's health port"),
    ]);

    /// <summary>This list plus <paramref name="more"/> (e.g. the TCP ports the daemon's own API listens on).</summary>
    public ReservedPorts With(IEnumerable<(int Port, TransportProtocol Protocol, string Why)> more)
    {
        var reasons = new Dictionary<(int, TransportProtocol), string>(_reasons);
        foreach (var (port, protocol, why) in more)
        {
            reasons.TryAdd((port, protocol), why);
        }

        return new ReservedPorts(reasons);
    }

    /// <summary>Why <paramref name="port"/> is reserved, or null when a service may publish it. O(1).</summary>
    public string? Reason(int port, TransportProtocol protocol) => _reasons.GetValueOrDefault((port, protocol));

    private static ReservedPorts Build(IEnumerable<(int, TransportProtocol, string)> ports) =>
        new(ports.ToDictionary(p => (p.Item1, p.Item2), p => p.Item3));
}
