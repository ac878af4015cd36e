using Mesh.Ingress.Dataplane;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Route;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

/// <summary>The node-side end of one of a task's legs: its ifindex and name in the daemon's namespace, and the bridge it is a port of.</summary>
public sealed record HostLeg(int Index, string Name, string Bridge);

/// <summary>
/// The node-side ends of the local tasks' legs on Mesh's bridges, and their removal when a task's namespace is gone.
/// A namespace deleted by its runtime (<c>ip netns del</c>, podman rm) is only unlinked: the kernel keeps it, and the
/// veth pairs in it, while anything still holds it. Seen in the lab: the killed task server's TCP connections with the
/// nodes' L7 entries, orphaned in FIN-WAIT/LAST-ACK and retransmitting to peers that had already dropped the task's
/// FDB and neighbour entries, kept the namespace for seconds to minutes. All that time the task's leg stays on the
/// node's bridge and answers ARP for an address the store may have given to another node's task since, and the bridge
/// delivers that task's traffic into the dead namespace. Deleting the node-side end deletes the pair at once, whatever
/// still pins the namespace (as libnetwork's sandbox cleanup and a CNI DEL do).
/// Legs are found from inside each task's namespace while it exists (a veth whose other end is a port of a Mesh bridge
/// in the daemon's namespace, checked from both ends) and remembered by ifindex, which the kernel does not reuse, so
/// nothing else attached later under the same name is ever taken for them. A task's namespace that is still there
/// keeps its legs (its runtime removes them, and connections still draining need them).
/// The route socket into a task's namespace is opened for one dump and closed: nothing of the daemon's stays in it.
/// </summary>
public sealed partial class TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger) : IDisposable
{
    /// <summary>The daemon's own namespace lives as long as the daemon: its socket is kept.</summary>
    private readonly Lazy<RouteHandle> _node = new(() => RouteHandle.Open(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Task namespace path → the node-side ends of its legs, as last found.</summary>
    private readonly Dictionary<string, IReadOnlyList<HostLeg>> _legs = new(StringComparer.Ordinal);

    /// <summary>The task namespaces whose legs are known (to be removed when the namespace goes).</summary>
    public IReadOnlyCollection<string> Namespaces => _legs.Keys;

    public IReadOnlyList<HostLeg> Of(string netnsPath) => _legs.GetValueOrDefault(netnsPath) ?? [];

    /// <summary>The daemon's links, read once per pass and given to <see cref="Learn"/> for every task.</summary>
    public IReadOnlyList<Link> ReadNode() => _node.Value.GetLinks();

    /// <summary>
    /// Finds the legs of the task namespace at <paramref name="netnsPath"/> (which exists) among <paramref name="node"/>'s
    /// links and remembers them. A namespace without legs yet (its runtime attaches them after registering the task) is
    /// remembered too, so its vanishing is still noticed. Returns the legs found.
    /// </summary>
    public IReadOnlyList<HostLeg> Learn(string netnsPath, IReadOnlyList<Link> node)
    {
        IReadOnlyList<Link> inside;
        using (var task = RouteHandle.Open(netnsPath))
        {
            inside = task.GetLinks();
        }

        var byIndex = node.ToDictionary(l => l.Index);
        var legs = new List<HostLeg>();
        foreach (var end in inside.Where(l => l.Kind == LinkKinds.Veth && l.PeerNetnsId is not null && l.PeerIndex > 0))
        {
            if (byIndex.TryGetValue(end.PeerIndex, out var host) && host.Kind == LinkKinds.Veth && host.PeerNetnsId is not null
                && host.PeerIndex == end.Index && byIndex.TryGetValue(host.MasterIndex, out var bridge) && IsMeshBridge(bridge))
            {
                legs.Add(new HostLeg(host.Index, host.Name, bridge.Name));
            }
        }

        // Legs already known stay known: one detached from its bridge for a moment is still the task's.
        if (_legs.TryGetValue(netnsPath, out var known))
        {
            legs.AddRange(known.Where(k => legs.All(found => found.Index != k.Index) && byIndex.TryGetValue(k.Index, out var still) && still.Name == k.Name));
        }

        _legs[netnsPath] = legs;
        return legs;
    }

    /// <summary>
    /// The namespace at <paramref name="netnsPath"/> is gone: deletes the node-side ends of its legs that are still there
    /// (the same ifindex and name) and forgets it. Returns the legs deleted. A leg that cannot be deleted is logged and
    /// the namespace kept, so the next pass tries again.
    /// </summary>
    public IReadOnlyList<HostLeg> Remove(string netnsPath)
    {
        if (!_legs.TryGetValue(netnsPath, out var legs))
        {
            return [];
        }

        if (legs.Count == 0)
        {
            _legs.Remove(netnsPath);
            return [];
        }

        var present = ReadNode().ToDictionary(l => l.Index);
        var removed = new List<HostLeg>();
        var failed = false;
        foreach (var leg in legs)
        {
            if (!present.TryGetValue(leg.Index, out var link) || link.Name != leg.Name || link.Kind != LinkKinds.Veth)
            {
                // Gone with its namespace already.
                continue;
            }

            try
            {
                _node.Value.DeleteLink(leg.Index, leg.Name);
                removed.Add(leg);
                LogLegRemoved(leg.Name, leg.Bridge, netnsPath);
            }
            catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
            {
                // It went by itself in the meantime.
            }
            catch (NetlinkException e)
            {
                failed = true;
                LogLegRemovalFailed(leg.Name, netnsPath, e.Message);
            }
        }

        if (!failed)
        {
            _legs.Remove(netnsPath);
        }

        return removed;
    }

    private bool IsMeshBridge(Link link) =>
        link.Kind == LinkKinds.Bridge
        && (link.Name == network.IngressBridge || link.Name == network.GatewayBridge || link.Name.StartsWith(OverlayNames.BridgePrefix, StringComparison.Ordinal));

    public void Dispose()
    {
        if (_node.IsValueCreated)
        {
            _node.Value.Dispose();
        }
    }
}
