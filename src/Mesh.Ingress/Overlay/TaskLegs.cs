using Mesh.Ingress.Dataplane;
using Mesh.Ipvs;
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
/// A task namespace is remembered by its namespace id in the daemon's namespace (RTM_GETNSID, assigned if it has none),
/// not by the legs it had when last looked at: a runtime attaches legs after registering the task, without any store
/// change that would make the daemon look again, so legs remembered at a pass missed those attached after it (an
/// appnet leg stayed on its bridge that way). The legs are found when the namespace is gone: every veth in the daemon's
/// namespace on a Mesh bridge whose other end is in the namespace with that id (IFLA_LINK_NETNSID). The id stays the
/// namespace's while anything holds it; once the namespace is freed its veths went with it, and an id the kernel gave
/// to another namespace since that Mesh knows of is left alone. A namespace that is still there keeps its legs (its
/// runtime removes them, and connections still draining need them).
/// Nothing of the daemon's stays in a task's namespace: its file is open only for the id request.
/// </summary>
public sealed partial class TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger) : IDisposable
{
    /// <summary>The daemon's own namespace lives as long as the daemon: its socket is kept.</summary>
    private readonly Lazy<RouteHandle> _node = new(() => RouteHandle.Open(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Task namespace path → the namespace it named when last seen (its inode) and that namespace's id here.</summary>
    private readonly Dictionary<string, (NetworkNamespaceId Namespace, int Id)> _known = new(StringComparer.Ordinal);

    /// <summary>The task namespaces known here (their legs are removed when the namespace goes).</summary>
    public IReadOnlyCollection<string> Namespaces => _known.Keys;

    /// <summary>The daemon's links, read once per pass and given to <see cref="Learn"/> for every task.</summary>
    public IReadOnlyList<Link> ReadNode() => _node.Value.GetLinks();

    /// <summary>
    /// Remembers the task namespace at <paramref name="netnsPath"/> (which exists) by its id and returns its legs on
    /// Mesh's bridges among <paramref name="node"/>'s links (none yet is fine: its runtime attaches them later). When
    /// the path names another namespace than before (deleted and made again under the same name), the old one's legs
    /// go first.
    /// </summary>
    public IReadOnlyList<HostLeg> Learn(string netnsPath, IReadOnlyList<Link> node)
    {
        var ns = NetworkNamespace.Identify(netnsPath);
        if (_known.TryGetValue(netnsPath, out var before) && before.Namespace != ns)
        {
            Remove(netnsPath);
        }

        var id = _node.Value.GetOrAssignNetnsId(netnsPath);
        _known[netnsPath] = (ns, id);
        return LegsOf(id, node);
    }

    /// <summary>
    /// The namespace at <paramref name="netnsPath"/> is gone: deletes the node-side ends of its legs that are still there
    /// and forgets it. Returns the legs deleted. A leg that cannot be deleted is logged and the namespace kept, so the
    /// next pass tries again.
    /// </summary>
    public IReadOnlyList<HostLeg> Remove(string netnsPath)
    {
        if (!_known.TryGetValue(netnsPath, out var gone))
        {
            return [];
        }

        // Another namespace known here holds the id now: the one that had it was freed, and its legs with it.
        if (_known.Any(k => k.Key != netnsPath && k.Value.Id == gone.Id && k.Value.Namespace != gone.Namespace))
        {
            _known.Remove(netnsPath);
            return [];
        }

        var removed = new List<HostLeg>();
        var failed = false;
        foreach (var leg in LegsOf(gone.Id, ReadNode()))
        {
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
            _known.Remove(netnsPath);
        }

        return removed;
    }

    /// <summary>The veths among <paramref name="node"/> on a Mesh bridge whose other end is in the namespace with id <paramref name="id"/>.</summary>
    private List<HostLeg> LegsOf(int id, IReadOnlyList<Link> node)
    {
        var byIndex = node.ToDictionary(l => l.Index);
        return node
            .Where(l => l.Kind == LinkKinds.Veth && l.PeerNetnsId == id && byIndex.TryGetValue(l.MasterIndex, out var bridge) && IsMeshBridge(bridge))
            .Select(l => new HostLeg(l.Index, l.Name, byIndex[l.MasterIndex].Name))
            .ToList();
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
