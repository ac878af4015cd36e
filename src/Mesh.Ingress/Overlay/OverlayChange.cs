using System.Globalization;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// One change to the kernel in the node's namespace, made through rtnetlink by <see cref="OverlayKernel"/>; its text
/// is the <c>ip</c>/<c>bridge</c> command that would make the same change (for logs, and what an operator can type).
/// <see cref="Deferred"/>: the removal of an endpoint (or a network) that left, made at the end of the pass, once
/// the dataplane sends it no new connection: removed first, a connection to it would hang instead of being refused.
/// </summary>
public abstract record OverlayChange(bool Deferred = false)
{
    /// <summary>A change to a link (made, set or removed): what attaches to links is checked again after one.</summary>
    public virtual bool IsLink => false;
}

/// <summary><c>ip link add BRIDGE mtu N type bridge</c>.</summary>
public sealed record AddBridge(string Name, int Mtu) : OverlayChange
{
    public override bool IsLink => true;

    public override string ToString() => $"ip link add {Name} mtu {Mtu.ToString(CultureInfo.InvariantCulture)} type bridge";
}

/// <summary><c>ip link add VXLAN mtu N type vxlan id VNI dstport 4789 local ADDR dev UNDERLAY nolearning proxy</c>.</summary>
public sealed record AddVxlan(string Name, int Mtu, int Vni, int Port, string Local, string Underlay) : OverlayChange
{
    public override bool IsLink => true;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"ip link add {Name} mtu {Mtu} type vxlan id {Vni} dstport {Port} local {Local} dev {Underlay} nolearning proxy");
}

/// <summary><c>ip link set NAME [mtu N] [master BRIDGE] [up]</c>.</summary>
public sealed record SetLink(string Name, int? Mtu = null, string? Master = null, bool Up = false) : OverlayChange
{
    public override bool IsLink => true;

    public override string ToString() =>
        $"ip link set {Name}{(Mtu is { } m ? " mtu " + m.ToString(CultureInfo.InvariantCulture) : "")}{(Master is { } b ? " master " + b : "")}{(Up ? " up" : "")}";
}

/// <summary><c>sysctl -w net.ipv6.conf.NAME.disable_ipv6=1</c>: no IPv6 on an overlay's link (<see cref="Kernel.LinkIpv6"/>).</summary>
public sealed record DisableIpv6(string Name) : OverlayChange
{
    public override string ToString() => $"sysctl -w {Kernel.LinkIpv6.DisableKey(Name)}=1";
}

/// <summary><c>ip link del NAME</c>.</summary>
public sealed record DeleteLink(string Name, bool Later = false) : OverlayChange(Later)
{
    public override bool IsLink => true;

    public override string ToString() => $"ip link del {Name}";
}

/// <summary><c>bridge fdb replace MAC dev VXLAN dst VTEP self permanent</c>.</summary>
public sealed record ReplaceFdb(string Vxlan, string Mac, string Vtep) : OverlayChange
{
    public override string ToString() => $"bridge fdb replace {Mac} dev {Vxlan} dst {Vtep} self permanent";
}

/// <summary><c>bridge fdb del MAC dev VXLAN [dst VTEP] self</c>.</summary>
public sealed record DeleteFdb(string Vxlan, string Mac, string? Dst, bool Later) : OverlayChange(Later)
{
    public override string ToString() => $"bridge fdb del {Mac} dev {Vxlan}{(Dst is null ? "" : " dst " + Dst)} self";
}

/// <summary><c>ip neigh replace IP lladdr MAC dev VXLAN nud permanent</c>.</summary>
public sealed record ReplaceNeighbour(string Vxlan, string Ip, string Mac) : OverlayChange
{
    public override string ToString() => $"ip neigh replace {Ip} lladdr {Mac} dev {Vxlan} nud permanent";
}

/// <summary><c>ip neigh del IP dev VXLAN</c>.</summary>
public sealed record DeleteNeighbour(string Vxlan, string Ip) : OverlayChange(Deferred: true)
{
    public override string ToString() => $"ip neigh del {Ip} dev {Vxlan}";
}
