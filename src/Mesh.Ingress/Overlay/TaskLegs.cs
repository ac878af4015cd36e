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
/// Only legs recorded for that namespace while it was alive are deleted, never legs found by its namespace id after it
/// went: the kernel gives a freed id to the next namespace that needs one, so once a deleted namespace is freed its id
/// may name a new task's namespace before the daemon looked at it (the convergence scenario lost a new task's legs
/// that way). A leg is recorded with the namespace held open (<see cref="NamespaceHold"/>), so the id it was found by
/// named that namespace then; a recorded leg is deleted only if its ifindex still is a veth of that name on a Mesh
/// bridge whose other end is in the namespace with that id (an ifindex is not reused while its link lives, and a freed
/// namespace took its veths with it). Legs are recorded at every pass and every poll between passes:
/// a runtime attaches them after registering the task, with no store change to make the daemon look again. A
/// namespace that is still there keeps its legs (its runtime removes them, and connections still draining need them).
/// Nothing of the daemon's stays in a task's namespace: its file is open only while its legs are read.
/// </summary>
public sealed partial class TaskLegs : IDisposable
{
    private readonly NodeNetworkOptions _network;
    private readonly ILogger<TaskLegs> _logger;

    /// <summary>The daemon's own namespace lives as long as the daemon: its socket is kept.</summary>
    private readonly Lazy<RouteHandle> _node;

    /// <summary>A pass and the wait between passes both learn (the wait's learning may outlast it).</summary>
    private readonly Lock _lock = new();

    /// <summary>Task namespace path → the namespace it named when last seen, that namespace's id here, and its legs then.</summary>
    private readonly Dictionary<string, Known> _known = new(StringComparer.Ordinal);

    public TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger)
        : this(network, logger, nodeNetnsPath: null)
    {
    }

    /// <summary>With the node's links in the namespace at <paramref name="nodeNetnsPath"/> (null: the daemon's own), for tests.</summary>
    internal TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger, string? nodeNetnsPath)
    {
        _network = network;
        _logger = logger;
        _node = new(() => RouteHandle.Open(nodeNetnsPath), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    private sealed record Known(NetworkNamespaceId Namespace, int Id, IReadOnlyList<HostLeg> Legs);

    /// <summary>The task namespaces known here (their recorded legs are removed when the namespace goes).</summary>
    public IReadOnlyCollection<string> Namespaces
    {
        get
        {
            lock (_lock)
            {
                return [.. _known.Keys];
            }
        }
    }

    /// <summary>The legs recorded for the namespace at <paramref name="netnsPath"/> (none when it is not known).</summary>
    public IReadOnlyList<HostLeg> LegsOf(string netnsPath)
    {
        lock (_lock)
        {
            return _known.TryGetValue(netnsPath, out var known) ? known.Legs : [];
        }
    }

    /// <summary>
    /// Records the legs on Mesh's bridges of the task namespaces at <paramref name="netnsPaths"/> that exist (none yet
    /// is fine: the runtime attaches them later, and the next call records them). All of them are held open while the
    /// daemon's links are read once. A path that names another namespace than before (deleted and made again under the
    /// same name) has the old one's legs removed first. A path that is gone is skipped (<see cref="Remove"/> is for it);
    /// one that cannot be read is logged and tried again next time.
    /// </summary>
    public void Learn(IEnumerable<string> netnsPaths)
    {
        ArgumentNullException.ThrowIfNull(netnsPaths);
        lock (_lock)
        {
            var held = new List<(string Path, NamespaceHold Hold)>();
            try
            {
                foreach (var path in netnsPaths.Distinct(StringComparer.Ordinal))
                {
                    try
                    {
                        held.Add((path, _node.Value.HoldNamespace(path)));
                    }
                    catch (FileNotFoundException)
                    {
                        // Deleted meanwhile: its recorded legs are removed by the pass that sees it gone.
                    }
                    catch (Exception e) when (e is IOException or NetlinkException)
                    {
                        LogNamespaceUnreadable(path, e.Message);
                    }
                }

                foreach (var (path, hold) in held)
                {
                    if (_known.TryGetValue(path, out var before) && before.Namespace != hold.Namespace)
                    {
                        RemoveLocked(path, before);
                    }
                }

                if (held.Count == 0)
                {
                    return;
                }

                var links = _node.Value.GetLinks();
                foreach (var (path, hold) in held)
                {
                    _known[path] = new Known(hold.Namespace, hold.Id, FindLegs(hold.Id, links));
                }
            }
            finally
            {
                foreach (var (_, hold) in held)
                {
                    hold.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// The namespace at <paramref name="netnsPath"/> is gone: deletes its recorded legs that are still its legs, and
    /// forgets it. Returns the legs deleted. A leg that cannot be deleted is logged and the namespace kept, so the next
    /// pass tries again.
    /// </summary>
    public IReadOnlyList<HostLeg> Remove(string netnsPath)
    {
        lock (_lock)
        {
            return _known.TryGetValue(netnsPath, out var gone) ? RemoveLocked(netnsPath, gone) : [];
        }
    }

    private List<HostLeg> RemoveLocked(string netnsPath, Known gone)
    {
        var removed = new List<HostLeg>();
        var failed = false;
        if (gone.Legs.Count > 0)
        {
            var links = _node.Value.GetLinks();
            var byIndex = links.ToDictionary(l => l.Index);
            foreach (var leg in gone.Legs)
            {
                if (!byIndex.TryGetValue(leg.Index, out var now))
                {
                    continue; // went with its namespace, or its runtime deleted it
                }

                if (now.Name != leg.Name || now.Kind != LinkKinds.Veth || now.PeerNetnsId != gone.Id || BridgeOf(now, byIndex) is null)
                {
                    LogLegNotOurs(leg.Name, leg.Index, netnsPath);
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
        }

        if (!failed)
        {
            _known.Remove(netnsPath);
        }

        return removed;
    }

    /// <summary>The veths among <paramref name="links"/> on a Mesh bridge whose other end is in the namespace with id <paramref name="id"/>.</summary>
    private List<HostLeg> FindLegs(int id, IReadOnlyList<Link> links)
    {
        var byIndex = links.ToDictionary(l => l.Index);
        var legs = new List<HostLeg>();
        foreach (var link in links)
        {
            if (link.Kind == LinkKinds.Veth && link.PeerNetnsId == id && BridgeOf(link, byIndex) is { } bridge)
            {
                legs.Add(new HostLeg(link.Index, link.Name, bridge.Name));
            }
        }

        return legs;
    }

    /// <summary>The Mesh bridge <paramref name="link"/> is a port of; null when it is on none.</summary>
    private Link? BridgeOf(Link link, Dictionary<int, Link> byIndex) =>
        byIndex.TryGetValue(link.MasterIndex, out var bridge) && IsMeshBridge(bridge) ? bridge : null;

    private bool IsMeshBridge(Link link) =>
        link.Kind == LinkKinds.Bridge
        && (link.Name == _network.IngressBridge || link.Name == _network.GatewayBridge || link.Name.StartsWith(OverlayNames.BridgePrefix, StringComparison.Ordinal));

    public void Dispose()
    {
        if (_node.IsValueCreated)
        {
            _node.Value.Dispose();
        }
    }
}
