using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Overlay;

/// <summary>A VXLAN device's settings as the kernel reports them (<see cref="Device"/>: the underlay's name).</summary>
public sealed record VxlanSettings(int Id, int Port, string? Local, string? Device, bool Learning, bool Proxy);

/// <summary>
/// One link of the node's namespace. <see cref="Ipv6"/>, read for bridges and VXLAN devices only: whether IPv6 is on
/// (its <c>disable_ipv6</c> is 0); null when not read or the kernel has no IPv6.
/// </summary>
public sealed record KernelLink(string Name, string? Kind, bool Up, string? Master, int Mtu, IReadOnlyList<string> Ipv4, VxlanSettings? Vxlan, bool? Ipv6 = null);

/// <summary>
/// An FDB entry the VXLAN device holds itself (<c>self</c>): a MAC (<see cref="Mesh.Ipvs.Netlink.Route.MacText"/>'s
/// value) and the IPv4 VTEP it is sent to (an IPv4 VXLAN device holds no other: the kernel refuses them). A 24-byte value,
/// as the kernel's dump gives it: a node reads one per remote endpoint at every resync (50,000 at 10,000 services × 5
/// tasks), and makes text only of those it changes.
/// </summary>
public readonly record struct KernelFdbEntry(ulong Mac, uint? Dst, bool Permanent)
{
    public string MacText => Mesh.Ipvs.Netlink.Route.MacText.Format(Mac);

    public string? DstText => Dst is { } d ? IpValue.V4(d).ToString() : null;

    /// <summary>From text ("aa:bb:cc:dd:ee:ff", an IPv4 address or none), as iproute2's JSON prints it (tests).</summary>
    public static KernelFdbEntry Parse(string mac, string? dst, bool permanent) => new(
        Mesh.Ipvs.Netlink.Route.MacText.TryParse(mac, out var m) ? m : throw new FormatException($"'{mac}' is not a MAC address"),
        dst is null ? null : IpValue.Parse(dst).V4Bits,
        permanent);
}

/// <summary>An IPv4 neighbour entry on a VXLAN device (what its ARP proxy answers from); a value, as <see cref="KernelFdbEntry"/>.</summary>
public readonly record struct KernelNeighbour(uint Ip, ulong? Mac, bool Permanent)
{
    public string IpText => IpValue.V4(Ip).ToString();

    public string? MacText => Mac is { } m ? Mesh.Ipvs.Netlink.Route.MacText.Format(m) : null;

    /// <summary>From text (an IPv4 address, "aa:bb:cc:dd:ee:ff" or none), as iproute2's JSON prints it (tests).</summary>
    public static KernelNeighbour Parse(string ip, string? mac, bool permanent) => new(
        IpValue.Parse(ip).V4Bits,
        mac is null ? null : Mesh.Ipvs.Netlink.Route.MacText.TryParse(mac, out var m) ? m : throw new FormatException($"'{mac}' is not a MAC address"),
        permanent);
}

/// <summary>What the kernel holds for the overlays of this node: every link, and the FDB and neighbours of each of Mesh's VXLAN devices.</summary>
public sealed record OverlayKernelState(
    IReadOnlyDictionary<string, KernelLink> Links,
    IReadOnlyDictionary<string, IReadOnlyList<KernelFdbEntry>> Fdb,
    IReadOnlyDictionary<string, IReadOnlyList<KernelNeighbour>> Neighbours);
