using System.Globalization;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// The changes that make the kernel hold the plan, and nothing more: links first, then entries that are wrong, then the
/// missing ones; last, <see cref="OverlayChange.Deferred"/>, the entries of endpoints that left and the links of
/// networks the node no longer carries. Entries already right are not touched, so a converged node (or a restarted
/// daemon) changes nothing.
/// </summary>
public static class OverlayDiff
{
    public static IReadOnlyList<OverlayChange> Changes(OverlayPlan plan, OverlayKernelState kernel)
    {
        var removeLinks = new List<OverlayChange>();
        var links = new List<OverlayChange>();
        var removeEntries = new List<OverlayChange>();
        var fixEntries = new List<OverlayChange>();
        var addEntries = new List<OverlayChange>();
        var fresh = new HashSet<string>(StringComparer.Ordinal);

        var wanted = plan.Links.SelectMany(l => new[] { l.Bridge, l.Vxlan }).ToHashSet(StringComparer.Ordinal);
        foreach (var link in kernel.Links.Values.Where(l => !wanted.Contains(l.Name) && IsOwned(l)).OrderBy(l => l.Kind == "bridge" ? 1 : 0).ThenBy(l => l.Name, StringComparer.Ordinal))
        {
            removeLinks.Add(new OverlayChange("ip", ["link", "del", link.Name], Deferred: true));
        }

        foreach (var link in plan.Links)
        {
            var mtu = link.Mtu.ToString(CultureInfo.InvariantCulture);
            if (!kernel.Links.TryGetValue(link.Bridge, out var bridge))
            {
                links.Add(Ip("link", "add", link.Bridge, "mtu", mtu, "type", "bridge"));
                links.Add(Ip("link", "set", link.Bridge, "up"));
            }
            else if (bridge.Kind != "bridge")
            {
                throw new InvalidOperationException($"'{link.Bridge}' (network {link.Network}) exists but is a {bridge.Kind ?? "plain"} link, not a bridge: remove it, Mesh does not take over links it did not make");
            }
            else
            {
                if (bridge.Mtu != link.Mtu)
                {
                    links.Add(Ip("link", "set", link.Bridge, "mtu", mtu));
                }

                if (!bridge.Up)
                {
                    links.Add(Ip("link", "set", link.Bridge, "up"));
                }
            }

            kernel.Links.TryGetValue(link.Vxlan, out var vxlan);
            if (vxlan is not null && !IsRight(vxlan.Vxlan, link, plan))
            {
                // A VXLAN device's id, port, source and learning cannot all be changed in place: make it again.
                links.Add(Ip("link", "del", link.Vxlan));
                vxlan = null;
            }

            if (vxlan is null)
            {
                fresh.Add(link.Vxlan);
                links.Add(Ip("link", "add", link.Vxlan, "mtu", mtu, "type", "vxlan", "id", link.Vni.ToString(CultureInfo.InvariantCulture),
                    "dstport", OverlayNames.VxlanPort.ToString(CultureInfo.InvariantCulture), "local", plan.Local, "dev", plan.Underlay, "nolearning", "proxy"));
                links.Add(Ip("link", "set", link.Vxlan, "master", link.Bridge, "up"));
            }
            else
            {
                if (vxlan.Mtu != link.Mtu)
                {
                    links.Add(Ip("link", "set", link.Vxlan, "mtu", mtu));
                }

                if (vxlan.Master != link.Bridge || !vxlan.Up)
                {
                    links.Add(Ip("link", "set", link.Vxlan, "master", link.Bridge, "up"));
                }
            }

            var peers = plan.Peers.Where(p => p.Vxlan == link.Vxlan).ToList();
            var fdb = fresh.Contains(link.Vxlan) ? [] : kernel.Fdb.GetValueOrDefault(link.Vxlan) ?? [];
            var neighbours = fresh.Contains(link.Vxlan) ? [] : kernel.Neighbours.GetValueOrDefault(link.Vxlan) ?? [];
            var vteps = peers.ToDictionary(p => p.Mac, p => p.Vtep, StringComparer.Ordinal);
            var macs = peers.ToDictionary(p => p.Ip, p => p.Mac, StringComparer.Ordinal);

            // Anything else the device holds goes, the all-zero flood entries among them: no flooding. A wrong VTEP of
            // a wanted MAC goes at once (its right one follows); what no endpoint wants any more goes last.
            foreach (var entry in fdb.Where(e => !vteps.TryGetValue(e.Mac, out var vtep) || e.Dst != vtep))
            {
                var deferred = !vteps.ContainsKey(entry.Mac);
                var change = entry.Dst is null
                    ? new OverlayChange("bridge", ["fdb", "del", entry.Mac, "dev", link.Vxlan, "self"], deferred)
                    : new OverlayChange("bridge", ["fdb", "del", entry.Mac, "dev", link.Vxlan, "dst", entry.Dst, "self"], deferred);
                (deferred ? removeEntries : fixEntries).Add(change);
            }

            foreach (var neighbour in neighbours.Where(n => !macs.ContainsKey(n.Ip)))
            {
                removeEntries.Add(new OverlayChange("ip", ["neigh", "del", neighbour.Ip, "dev", link.Vxlan], Deferred: true));
            }

            foreach (var peer in peers)
            {
                if (!fdb.Any(e => e.Mac == peer.Mac && e.Dst == peer.Vtep && e.Permanent))
                {
                    addEntries.Add(new OverlayChange("bridge", ["fdb", "replace", peer.Mac, "dev", link.Vxlan, "dst", peer.Vtep, "self", "permanent"]));
                }

                if (!neighbours.Any(n => n.Ip == peer.Ip && n.Mac == peer.Mac && n.Permanent))
                {
                    addEntries.Add(Ip("neigh", "replace", peer.Ip, "lladdr", peer.Mac, "dev", link.Vxlan, "nud", "permanent"));
                }
            }
        }

        return [.. links, .. fixEntries, .. addEntries, .. removeEntries, .. removeLinks];
    }

    /// <summary>Links by Mesh's names and kinds only: a bridge or VXLAN device of anyone else is never removed.</summary>
    private static bool IsOwned(KernelLink link) =>
        (link.Kind == "vxlan" && link.Name.StartsWith(OverlayNames.VxlanPrefix, StringComparison.Ordinal))
        || (link.Kind == "bridge" && link.Name.StartsWith(OverlayNames.BridgePrefix, StringComparison.Ordinal));

    private static bool IsRight(VxlanSettings? vxlan, OverlayLink link, OverlayPlan plan) =>
        vxlan is not null && vxlan.Id == link.Vni && vxlan.Port == OverlayNames.VxlanPort && vxlan.Local == plan.Local
        && vxlan.Device == plan.Underlay && !vxlan.Learning && vxlan.Proxy;

    private static OverlayChange Ip(params string[] arguments) => new("ip", arguments);
}
