using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Model;

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
        var endpoints = state.Tasks
            .Where(t => t.State != TaskState.NodeDown && vteps.ContainsKey(t.Node))
            .SelectMany(t => t.Addresses.Select(a => (Network: a.Key, Ip: a.Value, Node: t.Node)))
            .Concat(state.Nodes.Where(n => vteps.ContainsKey(n.Name)).Select(n => (Network: OverlayNetwork.IngressName, Ip: n.IngressSandboxIp, Node: n.Name)));

        // Sized for every endpoint at most (one per task address and node), so the plan's array is made once, not
        // grown through five large arrays that die and kept with a quarter empty (65,536 peers' room for 50,000).
        var peers = new List<OverlayPeer>(state.Tasks.Sum(t => t.Addresses.Count) + state.Nodes.Count);
        foreach (var link in carried)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (_, ip, owner) in endpoints.Where(e => e.Network == link.Network && IsIpv4(e.Ip)).OrderBy(e => e.Ip, StringComparer.Ordinal))
            {
                // One address is one endpoint; the store never hands it out twice, so a duplicate is ignored, not flapped.
                if (seen.Add(ip))
                {
                    peers.Add(new OverlayPeer(link.Vxlan, ip, vteps[owner]));
                }
            }
        }

        return new OverlayPlan(local, carried, peers) { Tasks = state.Tasks, Nodes = state.Nodes };
    }

    private static bool IsIpv4(string? text) => IPAddress.TryParse(text, out var ip) && ip.AddressFamily == AddressFamily.InterNetwork && text!.Count(c => c == '.') == 3;
}
