using System.Net;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A neighbour entry (RTM_NEWNEIGH). Two uses: an ARP entry (<see cref="NeighbourFamily.Inet"/>: IP → MAC on a
/// link, <c>ip neigh</c>) and an FDB entry of a VXLAN device (<see cref="NeighbourFamily.Bridge"/> with NTF_SELF:
/// MAC → remote VTEP, <c>bridge fdb ... self</c>). <see cref="State"/> holds NUD_* bits, <see cref="Flags"/> NTF_*.
/// </summary>
public sealed record Neighbour
{
    public NeighbourFamily Family { get; init; } = NeighbourFamily.Inet;

    public int LinkIndex { get; init; }

    /// <summary>NDA_DST: the neighbour's IP (ARP), or the VTEP a MAC is sent to (FDB); null for an FDB entry without one.</summary>
    public IPAddress? Destination { get; init; }

    /// <summary>NDA_LLADDR as lower-case "aa:bb:cc:dd:ee:ff".</summary>
    public string? Mac { get; init; }

    public ushort State { get; init; }

    public byte Flags { get; init; }

    public bool Permanent => (State & RouteConstants.NUD_PERMANENT) != 0;

    public bool Self => (Flags & RouteConstants.NTF_SELF) != 0;

    /// <summary>An FDB entry of a VXLAN device: <c>bridge fdb replace MAC dev LINK dst VTEP self permanent</c> (state as iproute2 sends it: NOARP|PERMANENT).</summary>
    public static Neighbour Fdb(int linkIndex, string mac, IPAddress? vtep) => new()
    {
        Family = NeighbourFamily.Bridge,
        LinkIndex = linkIndex,
        Mac = mac,
        Destination = vtep,
        State = RouteConstants.NUD_NOARP | RouteConstants.NUD_PERMANENT,
        Flags = RouteConstants.NTF_SELF,
    };

    /// <summary>A permanent ARP entry: <c>ip neigh replace IP lladdr MAC dev LINK nud permanent</c>.</summary>
    public static Neighbour Arp(int linkIndex, IPAddress ip, string? mac) => new()
    {
        Family = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? NeighbourFamily.Inet6 : NeighbourFamily.Inet,
        LinkIndex = linkIndex,
        Destination = ip,
        Mac = mac,
        State = RouteConstants.NUD_PERMANENT,
    };

    public override string ToString() => Family == NeighbourFamily.Bridge
        ? $"fdb {Mac}{(Destination is { } d ? $" dst {d}" : "")} ifindex {LinkIndex}{(Self ? " self" : "")}"
        : $"neigh {Destination}{(Mac is { } m ? $" lladdr {m}" : "")} ifindex {LinkIndex}";
}

/// <summary>ndm_family of a neighbour entry.</summary>
public enum NeighbourFamily : byte
{
    Inet = RouteConstants.AF_INET,
    Bridge = RouteConstants.AF_BRIDGE,
    Inet6 = RouteConstants.AF_INET6,
}
