namespace Mesh.Ingress.Overlay;

/// <summary>
/// The interface the overlays' VXLAN devices send from: the one holding the node's advertise address. A fact of the
/// kernel, not of the cluster state, so the executor finds it at each read (<see cref="Find"/>), not the planner.
/// </summary>
public sealed record Underlay(string Device, int Mtu)
{
    /// <summary>The overlays' MTU: the underlay's less the VXLAN encapsulation.</summary>
    public int OverlayMtu => Mtu - OverlayNames.VxlanOverhead;

    /// <summary>The link holding <paramref name="local"/>; throws naming the address when none does.</summary>
    public static Underlay Find(OverlayKernelState kernel, string local)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        var link = kernel.Links.Values.FirstOrDefault(l => l.Ipv4.Contains(local))
            ?? throw new InvalidOperationException(
                $"the advertise address {local} is on no interface of this namespace: the overlays' VXLAN devices send from it (--advertise-addr)");
        return new Underlay(link.Name, link.Mtu);
    }
}
