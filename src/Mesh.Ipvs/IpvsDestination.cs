using System.Net;
using System.Net.Sockets;

namespace Mesh.Ipvs;

/// <summary>
/// A real server of a virtual service. The connection counters and <see cref="Stats"/> are filled by dumps only.
/// </summary>
public sealed record IpvsDestination(IPAddress Address, ushort Port)
{
    public AddressFamily AddressFamily => Address.AddressFamily;

    public ForwardingMethod ForwardingMethod { get; init; } = ForwardingMethod.Masquerade;

    /// <summary>Weight (0 quiesces the destination; negative is rejected by the kernel).</summary>
    public int Weight { get; init; } = 1;

    /// <summary>Upper connection threshold (0 = none).</summary>
    public uint UpperThreshold { get; init; }

    /// <summary>Lower connection threshold (0 = none).</summary>
    public uint LowerThreshold { get; init; }

    /// <summary>Tunnel encapsulation (only sent/meaningful with <see cref="ForwardingMethod.Tunnel"/>).</summary>
    public TunnelType TunnelType { get; init; } = TunnelType.IpIp;

    /// <summary>Tunnel destination port (GUE).</summary>
    public ushort TunnelPort { get; init; }

    public TunnelFlags TunnelFlags { get; init; }

    public uint ActiveConnections { get; init; }

    public uint InactiveConnections { get; init; }

    public uint PersistentConnections { get; init; }

    public IpvsStats? Stats { get; init; }

    public IPEndPoint EndPoint => new(Address, Port);

    /// <summary>True when both describe the same configuration (counters and stats ignored).</summary>
    public bool ConfigurationEquals(IpvsDestination? other) =>
        other is not null && Normalize(this) == Normalize(other);

    private static IpvsDestination Normalize(IpvsDestination d) =>
        d with { ActiveConnections = 0, InactiveConnections = 0, PersistentConnections = 0, Stats = null };

    public override string ToString() => $"{EndPoint} {ForwardingMethod} w={Weight}";
}
