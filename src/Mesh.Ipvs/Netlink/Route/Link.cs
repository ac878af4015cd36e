using System.Net;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A network interface (RTM_NEWLINK / RTM_GETLINK). Read back from the kernel every field is set; to create one,
/// <see cref="Name"/>, <see cref="Kind"/> and what the kind needs (<see cref="Vxlan"/>, <see cref="Peer"/>) are
/// given, <see cref="Mtu"/> and <see cref="Mac"/> optionally. <see cref="Index"/> is the kernel's ifindex (0 when
/// unknown). The kinds Mesh makes are <see cref="LinkKinds"/>; others are read as their kind name.
/// </summary>
public sealed record Link
{
    public int Index { get; init; }

    public required string Name { get; init; }

    /// <summary>IFLA_INFO_KIND ("bridge", "vxlan", "veth"...), null for a link without one (lo, a physical NIC).</summary>
    public string? Kind { get; init; }

    /// <summary>IFF_UP: administratively up.</summary>
    public bool Up { get; init; }

    /// <summary>IFLA_MTU; 0 means the kernel's default when creating.</summary>
    public int Mtu { get; init; }

    /// <summary>IFLA_MASTER: the ifindex of the bridge this link is a port of, 0 when none.</summary>
    public int MasterIndex { get; init; }

    /// <summary>IFLA_ADDRESS as lower-case "aa:bb:cc:dd:ee:ff" (Ethernet only), null when absent or not 6 bytes.</summary>
    public string? Mac { get; init; }

    public VxlanSettings? Vxlan { get; init; }

    /// <summary>IFLA_LINK as read back: for a veth, the ifindex of its other end (in the namespace <see cref="PeerNetnsId"/> names, when set), 0 when none.</summary>
    public int PeerIndex { get; init; }

    /// <summary>IFLA_LINK_NETNSID as read back: the other end is in another namespace, known here by this id; null when in the same one.</summary>
    public int? PeerNetnsId { get; init; }

    /// <summary>The other end of a veth pair, when creating one.</summary>
    public VethPeer? Peer { get; init; }
}

/// <summary>The link kinds Mesh creates.</summary>
public static class LinkKinds
{
    public const string Bridge = "bridge";
    public const string Vxlan = "vxlan";
    public const string Veth = "veth";
}

/// <summary>
/// IFLA_INFO_DATA of a VXLAN device: VNI, UDP destination port, source address, underlay ifindex, learning and ARP
/// proxy. Learning is sent explicitly (the kernel's default is on) and so is the port (its default is 8472, not 4789).
/// </summary>
public sealed record VxlanSettings(uint Id, ushort Port, IPAddress? Local, int DeviceIndex, bool Learning, bool Proxy);

/// <summary>
/// The peer of a new veth pair: its name, optional MAC and MTU, and the network namespace it is created in
/// (a path such as /var/run/netns/NAME; null: the same namespace as the first end).
/// </summary>
public sealed record VethPeer(string Name, string? Mac = null, int Mtu = 0, string? NamespacePath = null);

/// <summary>
/// A change to an existing link (RTM_NEWLINK without NLM_F_CREATE, what <c>ip link set</c> sends): only the non-null
/// fields change. <see cref="MasterIndex"/> 0 detaches from a bridge.
/// </summary>
public sealed record LinkChange(int Index)
{
    public int? Mtu { get; init; }

    public bool? Up { get; init; }

    public int? MasterIndex { get; init; }

    public string? Mac { get; init; }
}
