namespace Mesh.Ingress.Overlay;

/// <summary>One overlay network as this node carries it: a bridge with a VXLAN device as a port.</summary>
public sealed record OverlayLink(string Network, int Vni, string Bridge, string Vxlan, int Mtu);

/// <summary>A remote endpoint on an overlay: its MAC is at <see cref="Vtep"/> (an FDB entry), its IP has that MAC (a neighbour entry).</summary>
public sealed record OverlayPeer(string Vxlan, string Ip, string Mac, string Vtep);

/// <summary>
/// What this node's overlays should be, derived from the cluster state alone: the networks it carries and one peer
/// per remote endpoint on them. A value: equal plans mean nothing to do.
/// </summary>
public sealed record OverlayPlan(string Local, string Underlay, IReadOnlyList<OverlayLink> Links, IReadOnlyList<OverlayPeer> Peers)
{
    /// <summary>A stable text of the plan, to tell cheaply whether anything changed since the last pass.</summary>
    public string Fingerprint => string.Join('\n',
        Links.Select(l => $"L {l.Network} {l.Vni} {l.Bridge} {l.Vxlan} {l.Mtu}").Concat(Peers.Select(p => $"P {p.Vxlan} {p.Ip} {p.Mac} {p.Vtep}")).Prepend($"{Local} {Underlay}"));
}
