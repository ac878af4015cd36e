using System.Diagnostics.CodeAnalysis;
using Mesh.Discovery.Model;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// The overlays of one node from the cluster state (a pure function). The node carries the ingress network always,
/// and each other network one of its tasks is on (Docker joins a node to a network with its first task there). On
/// each carried network every remote endpoint is a peer: the tasks of other live nodes, and on ingress the other
/// nodes' ingress sandboxes (their replies come back through them). Local endpoints are on the bridge itself.
/// </summary>
public static class OverlayPlanner
{
    public const int MaxVni = (1 << 24) - 1;

    /// <param name="node">This node's name.</param>
    /// <param name="local">This node's advertise address: the VXLAN source, and the VTEP other nodes send to.</param>
    /// <param name="ingressBridge">The ingress network's bridge (the daemon's <c>--ingress-bridge</c>).</param>
    public static OverlayPlan Plan(ClusterState state, string node, string local, string ingressBridge)
    {
        ArgumentNullException.ThrowIfNull(state);
        var networks = state.Networks.Where(n => n.Vni is > 0 and <= MaxVni).GroupBy(n => n.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        networks.TryAdd(OverlayNetwork.IngressName, OverlayNetwork.Ingress);

        var carried = state.Tasks.Where(t => t.Node == node).SelectMany(t => t.Addresses.Keys)
            .Append(OverlayNetwork.IngressName)
            .Where(networks.ContainsKey)
            .Distinct(StringComparer.Ordinal)
            .Select(n => networks[n])
            .OrderBy(n => n.Vni)
            .Select(n => new OverlayLink(n.Name, n.Vni, OverlayNames.Bridge(n.Name, ingressBridge), OverlayNames.Vxlan(n.Vni)))
            .ToList();

        // A node that left (gone from the state) or is down (its lease expired) takes its endpoints with it.
        var vteps = state.Nodes.Where(n => n.Name != node && IsIpv4(n.AdvertiseAddress)).ToDictionary(n => n.Name, n => n.AdvertiseAddress, StringComparer.Ordinal);

        // Each carried network's remote endpoints in one pass over the tasks, looked up by network rather than each
        // task's addresses enumerated (no iterator or closure per task: 50,000 of them at every pass at 10,000 × 5).
        var endpoints = carried.ToDictionary(l => l.Network, _ => new List<(string Ip, string Vtep, int Order)>(), StringComparer.Ordinal);
        var order = 0;
        foreach (var task in state.Tasks)
        {
            if (task.State == TaskState.NodeDown || !vteps.TryGetValue(task.Node, out var vtep))
            {
                continue;
            }

            foreach (var (network, list) in endpoints)
            {
                if (task.Addresses.TryGetValue(network, out var ip) && IsIpv4(ip))
                {
                    list.Add((ip, vtep, order++));
                }
            }
        }

        if (endpoints.TryGetValue(OverlayNetwork.IngressName, out var ingress))
        {
            foreach (var n in state.Nodes)
            {
                if (vteps.TryGetValue(n.Name, out var vtep) && IsIpv4(n.IngressSandboxIp))
                {
                    ingress.Add((n.IngressSandboxIp!, vtep, order++));
                }
            }
        }

        // Sized for every endpoint at most (one per task address and node), so the plan's array is made once, not
        // grown through five large arrays that die and kept with a quarter empty (65,536 peers' room for 50,000).
        var peers = new List<OverlayPeer>(endpoints.Values.Sum(l => l.Count));
        foreach (var link in carried)
        {
            // By address; one address is one endpoint: the store never hands it out twice, so a duplicate is ignored
            // (the first in the state's order is kept), not flapped.
            var list = endpoints[link.Network];
            list.Sort(static (a, b) => string.CompareOrdinal(a.Ip, b.Ip) is var c && c != 0 ? c : a.Order.CompareTo(b.Order));
            string? last = null;
            foreach (var (ip, vtep, _) in list)
            {
                if (ip != last)
                {
                    peers.Add(new OverlayPeer(link.Vxlan, ip, vtep));
                    last = ip;
                }
            }
        }

        return new OverlayPlan(local, carried, peers) { Tasks = state.Tasks, Nodes = state.Nodes };
    }

    /// <summary>A canonical dotted quad, parsed without an object (the store keeps addresses canonical).</summary>
    private static bool IsIpv4([NotNullWhen(true)] string? text) => text is not null && IpValue.TryParseV4(text, out _);
}
