using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// The changes that make the kernel hold the plan, and nothing more: links first, then entries that are wrong, then the
/// missing ones; last, <see cref="OverlayChange.Deferred"/>, the entries of endpoints that left and the links of
/// networks the node no longer carries. Entries already right are not touched, so a converged node (or a restarted
/// daemon) changes nothing.
/// </summary>
public static class OverlayDiff
{
    public static IReadOnlyList<OverlayChange> Changes(OverlayPlan plan, Underlay underlay, OverlayKernelState kernel)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(underlay);
        ArgumentNullException.ThrowIfNull(kernel);
        var mtu = underlay.OverlayMtu;
        var removeLinks = new List<OverlayChange>();
        var links = new List<OverlayChange>();
        var removeEntries = new List<OverlayChange>();
        var fixEntries = new List<OverlayChange>();
        var addEntries = new List<OverlayChange>();
        var fresh = new HashSet<string>(StringComparer.Ordinal);

        var wanted = plan.Links.SelectMany(l => new[] { l.Bridge, l.Vxlan }).ToHashSet(StringComparer.Ordinal);
        foreach (var link in kernel.Links.Values.Where(l => !wanted.Contains(l.Name) && IsOwned(l)).OrderBy(l => l.Kind == "bridge" ? 1 : 0).ThenBy(l => l.Name, StringComparer.Ordinal))
        {
            removeLinks.Add(new DeleteLink(link.Name, Later: true));
        }

        foreach (var link in plan.Links)
        {
            if (!kernel.Links.TryGetValue(link.Bridge, out var bridge))
            {
                // IPv6 off before the link is up: it never gets a link-local address nor sends a solicitation.
                links.Add(new AddBridge(link.Bridge, mtu));
                links.Add(new DisableIpv6(link.Bridge));
                links.Add(new SetLink(link.Bridge, Up: true));
            }
            else if (bridge.Kind != "bridge")
            {
                throw new InvalidOperationException($"'{link.Bridge}' (network {link.Network}) exists but is a {bridge.Kind ?? "plain"} link, not a bridge: remove it, Mesh does not take over links it did not make");
            }
            else
            {
                if (bridge.Ipv6 == true)
                {
                    links.Add(new DisableIpv6(link.Bridge));
                }

                if (bridge.Mtu != mtu)
                {
                    links.Add(new SetLink(link.Bridge, Mtu: mtu));
                }

                if (!bridge.Up)
                {
                    links.Add(new SetLink(link.Bridge, Up: true));
                }
            }

            kernel.Links.TryGetValue(link.Vxlan, out var vxlan);
            if (vxlan is not null && !IsRight(vxlan.Vxlan, link, plan.Local, underlay.Device))
            {
                // A VXLAN device's id, port, source and learning cannot all be changed in place: make it again.
                links.Add(new DeleteLink(link.Vxlan));
                vxlan = null;
            }

            if (vxlan is null)
            {
                fresh.Add(link.Vxlan);
                links.Add(new AddVxlan(link.Vxlan, mtu, link.Vni, OverlayNames.VxlanPort, plan.Local, underlay.Device));
                links.Add(new DisableIpv6(link.Vxlan));
                links.Add(new SetLink(link.Vxlan, Master: link.Bridge, Up: true));
            }
            else
            {
                if (vxlan.Ipv6 == true)
                {
                    links.Add(new DisableIpv6(link.Vxlan));
                }

                if (vxlan.Mtu != mtu)
                {
                    links.Add(new SetLink(link.Vxlan, Mtu: mtu));
                }

                if (vxlan.Master != link.Bridge || !vxlan.Up)
                {
                    links.Add(new SetLink(link.Vxlan, Master: link.Bridge, Up: true));
                }
            }

            // The peers and the kernel's entries compared as values (a peer's MAC follows from its address); text is
            // made only for what changes. At 10,000 services × 5 tasks this runs over 50,000 peers at every resync.
            var linkPeers = plan.Peers.Where(p => p.Vxlan == link.Vxlan);
            var fdb = fresh.Contains(link.Vxlan) ? [] : kernel.Fdb.GetValueOrDefault(link.Vxlan) ?? [];
            var neighbours = fresh.Contains(link.Vxlan) ? [] : kernel.Neighbours.GetValueOrDefault(link.Vxlan) ?? [];
            var count = linkPeers.Count();
            var vteps = new Dictionary<ulong, uint>(count);
            var ips = new HashSet<uint>(count);
            foreach (var peer in linkPeers)
            {
                var (ip, mac, vtep) = Values(peer);
                vteps[mac] = vtep;
                ips.Add(ip);
            }

            // What is already right: looked up per peer instead of searched (50,000 peers met 50,000 entries at a
            // restart of a daemon at 10,000 services × 5 tasks).
            var heldFdb = new HashSet<KernelFdbEntry>(fdb.Count);
            heldFdb.UnionWith(fdb.Where(e => e.Permanent && e.Dst is not null));
            var heldNeighbours = new HashSet<KernelNeighbour>(neighbours.Count);
            heldNeighbours.UnionWith(neighbours.Where(n => n.Permanent && n.Mac is not null));

            // Anything else the device holds goes, the all-zero flood entries among them: no flooding. A wrong VTEP of
            // a wanted MAC goes at once (its right one follows); what no endpoint wants any more goes last.
            foreach (var entry in fdb)
            {
                var isPeer = vteps.TryGetValue(entry.Mac, out var vtep);
                if (!isPeer || entry.Dst != vtep)
                {
                    var change = new DeleteFdb(link.Vxlan, entry.MacText, entry.DstText, Later: !isPeer);
                    (isPeer ? fixEntries : removeEntries).Add(change);
                }
            }

            foreach (var neighbour in neighbours.Where(n => !ips.Contains(n.Ip)))
            {
                removeEntries.Add(new DeleteNeighbour(link.Vxlan, neighbour.IpText));
            }

            foreach (var peer in linkPeers)
            {
                var (ip, mac, vtep) = Values(peer);
                if (!heldFdb.Contains(new KernelFdbEntry(mac, vtep, Permanent: true)))
                {
                    addEntries.Add(new ReplaceFdb(link.Vxlan, peer.Mac, peer.Vtep));
                }

                if (!heldNeighbours.Contains(new KernelNeighbour(ip, mac, Permanent: true)))
                {
                    addEntries.Add(new ReplaceNeighbour(link.Vxlan, peer.Ip, peer.Mac));
                }
            }
        }

        return [.. links, .. fixEntries, .. addEntries, .. removeEntries, .. removeLinks];
    }

    /// <summary>A peer's IPv4 address, MAC and VTEP as values (the planner keeps only IPv4 endpoints and VTEPs).</summary>
    private static (uint Ip, ulong Mac, uint Vtep) Values(OverlayPeer peer)
    {
        if (!IpValue.TryParseV4(peer.Ip, out var ip) || !IpValue.TryParseV4(peer.Vtep, out var vtep))
        {
            throw new InvalidOperationException($"overlay peer {peer.Ip} at {peer.Vtep} on {peer.Vxlan}: not an IPv4 address");
        }

        return (ip.V4Bits, OverlayNames.MacValue(ip.V4Bits), vtep.V4Bits);
    }

    /// <summary>Links by Mesh's names and kinds only: a bridge or VXLAN device of anyone else is never removed.</summary>
    private static bool IsOwned(KernelLink link) =>
        (link.Kind == "vxlan" && link.Name.StartsWith(OverlayNames.VxlanPrefix, StringComparison.Ordinal))
        || (link.Kind == "bridge" && link.Name.StartsWith(OverlayNames.BridgePrefix, StringComparison.Ordinal));

    private static bool IsRight(VxlanSettings? vxlan, OverlayLink link, string local, string underlay) =>
        vxlan is not null && vxlan.Id == link.Vni && vxlan.Port == OverlayNames.VxlanPort && vxlan.Local == local
        && vxlan.Device == underlay && !vxlan.Learning && vxlan.Proxy;
}
