namespace Mesh.Ingress.Overlay;

/// <summary>A VXLAN device's settings as the kernel reports them (<see cref="Device"/>: the underlay's name).</summary>
public sealed record VxlanSettings(int Id, int Port, string? Local, string? Device, bool Learning, bool Proxy);

/// <summary>
/// One link of the node's namespace. <see cref="Ipv6"/>, read for bridges and VXLAN devices only: whether IPv6 is on
/// (its <c>disable_ipv6</c> is 0); null when not read or the kernel has no IPv6.
/// </summary>
public sealed record KernelLink(string Name, string? Kind, bool Up, string? Master, int Mtu, IReadOnlyList<string> Ipv4, VxlanSettings? Vxlan, bool? Ipv6 = null);

/// <summary>An FDB entry the VXLAN device holds itself (<c>self</c>): a MAC and the VTEP it is sent to.</summary>
public sealed record KernelFdbEntry(string Mac, string? Dst, bool Permanent);

/// <summary>A neighbour entry on a VXLAN device (what its ARP proxy answers from).</summary>
public sealed record KernelNeighbour(string Ip, string? Mac, bool Permanent);

/// <summary>What the kernel holds for the overlays of this node: every link, and the FDB and neighbours of each VXLAN device.</summary>
public sealed record OverlayKernelState(
    IReadOnlyDictionary<string, KernelLink> Links,
    IReadOnlyDictionary<string, IReadOnlyList<KernelFdbEntry>> Fdb,
    IReadOnlyDictionary<string, IReadOnlyList<KernelNeighbour>> Neighbours);
