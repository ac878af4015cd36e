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
/// namespace took its veths with it). A namespace that is still there keeps its legs (its runtime removes them, and
/// connections still draining need them). Nothing of the daemon's stays in a task's namespace: its file is open only
/// while its legs are read.
/// A runtime attaches legs after registering the task, with no store change to make the daemon look again, and may
/// delete the namespace right after: legs are recorded at every pass (one link dump, the task namespaces held open)
/// and, between passes, as the kernel reports them (<see cref="LinkWatch"/>, subscribed before the first dump): a
/// veth's RTM_NEWLINK on a Mesh bridge whose IFLA_LINK_NETNSID is a known namespace's id records it, its RTM_DELLINK
/// forgets it. Such an id is trusted only from the dump that read it, the namespace held, until the kernel reports it
/// freed (RTM_DELNSID comes before the id can name another namespace, and the notifications come in order): after
/// that, or after notifications were lost (an overrun, which is followed by a dump of everything still there), a
/// namespace gets no more legs from notifications, only the ones already recorded. Before any removal the
/// notifications queued are applied, so a leg attached just before its namespace was deleted is recorded by then.
/// </summary>
public sealed partial class TaskLegs : IDisposable
{
    /// <summary>How long the watch waits for a notification before it looks whether it is to stop.</summary>
    private static readonly TimeSpan WatchWakeup = TimeSpan.FromSeconds(1);

    /// <summary>How long the watch waits after a failure (logged) before it reads again.</summary>
    private static readonly TimeSpan WatchRetry = TimeSpan.FromSeconds(1);

    private readonly NodeNetworkOptions _network;
    private readonly ILogger<TaskLegs> _logger;
    private readonly string? _nodeNetnsPath;

    /// <summary>The daemon's own namespace lives as long as the daemon: its socket is kept.</summary>
    private readonly Lazy<RouteHandle> _node;

    /// <summary>A pass and the watch both learn, in the order the kernel reported (the watch applies while holding it).</summary>
    private readonly Lock _lock = new();

    /// <summary>Task namespace path → the namespace it named when last seen, that namespace's id here, and its legs.</summary>
    private readonly Dictionary<string, Known> _known = new(StringComparer.Ordinal);

    /// <summary>Mesh's bridges in the node's namespace, ifindex → name, as of the last dump and the notifications since.</summary>
    private readonly Dictionary<int, string> _bridges = [];

    /// <summary>Opened at the first <see cref="Learn"/>, before its dump.</summary>
    private LinkWatch? _watch;

    private Thread? _watcher;
    private volatile bool _stopping;

    /// <summary>Set when the watch opens: every known namespace still there is read again, as after an overrun.</summary>
    private bool _rereadAll;

    public TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger)
        : this(network, logger, nodeNetnsPath: null)
    {
    }

    /// <summary>With the node's links in the namespace at <paramref name="nodeNetnsPath"/> (null: the daemon's own), for tests.</summary>
    internal TaskLegs(NodeNetworkOptions network, ILogger<TaskLegs> logger, string? nodeNetnsPath)
    {
        _network = network;
        _logger = logger;
        _nodeNetnsPath = nodeNetnsPath;
        _node = new(() => RouteHandle.Open(nodeNetnsPath), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>
    /// A task namespace as last seen: which one the path named, its id here, its legs. <paramref name="Attributable"/>:
    /// the id still names it (it was held when the id was read, and the kernel has not reported the id freed since, nor
    /// lost notifications), so a new leg whose other end is in the namespace with this id is its.
    /// </summary>
    private sealed record Known(NetworkNamespaceId Namespace, int Id, IReadOnlyList<HostLeg> Legs, bool Attributable);

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
            Watch();
            LearnLocked(netnsPaths);
        }
    }

    /// <summary>
    /// Applies the notifications queued, then reads the legs of the namespaces at <paramref name="netnsPaths"/>. After
    /// an overrun every known namespace still there is read again, and the bridges with them.
    /// </summary>
    private void LearnLocked(IEnumerable<string> netnsPaths)
    {
        var held = new List<(string Path, NamespaceHold Hold)>();
        try
        {
            var paths = netnsPaths.Distinct(StringComparer.Ordinal).ToList();
            Hold(paths, held);

            // Held first: a notification queued before may be of a namespace freed since, whose id a held one may have
            // now; the dump below, which the holds make right, overrides what it recorded.
            var overran = ApplyNotificationsLocked();
            if (overran)
            {
                LogNotificationsLost(_known.Count);
            }

            var reread = overran || _rereadAll;
            if (reread)
            {
                _rereadAll = false;
                foreach (var (path, known) in _known.ToList())
                {
                    _known[path] = known with { Attributable = false };
                }

                Hold(_known.Keys.Except(paths, StringComparer.Ordinal).ToList(), held);
            }

            foreach (var (path, hold) in held)
            {
                if (_known.TryGetValue(path, out var before) && before.Namespace != hold.Namespace)
                {
                    RemoveLocked(path, before);
                }
            }

            if (held.Count == 0 && !reread)
            {
                return;
            }

            var links = _node.Value.GetLinks();
            var byIndex = links.ToDictionary(l => l.Index);
            _bridges.Clear();
            foreach (var bridge in links.Where(IsMeshBridge))
            {
                _bridges[bridge.Index] = bridge.Name;
            }

            foreach (var (path, hold) in held)
            {
                _known[path] = new Known(hold.Namespace, hold.Id, FindLegs(hold.Id, links, byIndex), Attributable: true);
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

    /// <summary>Holds the namespaces at <paramref name="paths"/> that exist, adding them to <paramref name="held"/>.</summary>
    private void Hold(IEnumerable<string> paths, List<(string Path, NamespaceHold Hold)> held)
    {
        foreach (var path in paths)
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
    }

    /// <summary>
    /// Opens the watch and starts the thread that applies its notifications as they come, once. Until it is open (it
    /// failed: logged, tried again at the next pass) legs are recorded by the passes alone; once open, what it may
    /// have missed before is read again like after an overrun.
    /// </summary>
    private void Watch()
    {
        if (_watch is not null)
        {
            return;
        }

        try
        {
            _watch = LinkWatch.Open(_nodeNetnsPath);
        }
        catch (NetlinkException e)
        {
            LogWatchFailed(e.Message);
            return;
        }

        _rereadAll = true;
        _watcher = new Thread(WatchLoop) { IsBackground = true, Name = "mesh-task-legs" };
        _watcher.Start();
    }

    private void WatchLoop()
    {
        while (!_stopping)
        {
            try
            {
                if (!_watch!.Wait(WatchWakeup))
                {
                    continue;
                }

                lock (_lock)
                {
                    if (_stopping)
                    {
                        return;
                    }

                    LearnLocked([]);
                }
            }
            catch (Exception e)
            {
                // A failed read or dump (the kernel's answer is not trusted either): the next notification or pass
                // tries again. Nothing may escape a thread of its own: it would end the daemon.
                if (_stopping)
                {
                    return;
                }

                LogWatchFailed(e.Message);
                Thread.Sleep(WatchRetry);
            }
        }
    }

    /// <summary>
    /// Applies the notifications queued now, in order; true when some were lost (nothing applied then): an overrun, or
    /// a read that failed (what it took from the socket is lost all the same).
    /// </summary>
    private bool ApplyNotificationsLocked()
    {
        if (_watch is null)
        {
            return false;
        }

        IReadOnlyList<LinkEvent> events;
        bool overrun;
        try
        {
            (events, overrun) = _watch.Read();
        }
        catch (NetlinkException e)
        {
            LogWatchFailed(e.Message);
            return true;
        }

        foreach (var e in events)
        {
            switch (e)
            {
                case LinkChanged { Link: var link }:
                    if (IsMeshBridge(link))
                    {
                        _bridges[link.Index] = link.Name;
                    }
                    else
                    {
                        _bridges.Remove(link.Index);
                    }

                    var bridge = link.Kind == LinkKinds.Veth && link.PeerNetnsId is not null && _bridges.TryGetValue(link.MasterIndex, out var b) ? b : null;
                    foreach (var (path, known) in _known.ToList())
                    {
                        var leg = bridge is not null && known.Attributable && known.Id == link.PeerNetnsId ? new HostLeg(link.Index, link.Name, bridge) : null;
                        SetLeg(path, known, link.Index, leg);
                    }

                    break;
                case LinkDeleted { Index: var index }:
                    _bridges.Remove(index);
                    foreach (var (path, known) in _known.ToList())
                    {
                        SetLeg(path, known, index, null);
                    }

                    break;
                case NetnsIdDeleted { Id: var id }:
                    // Freed, its veths with it: nothing of it is left to remove, and its id may name another namespace next.
                    foreach (var (path, known) in _known.ToList())
                    {
                        if (known.Attributable && known.Id == id)
                        {
                            _known[path] = known with { Legs = [], Attributable = false };
                        }
                    }

                    break;
            }
        }

        return overrun;
    }

    /// <summary>Records <paramref name="leg"/> as the namespace's leg with ifindex <paramref name="index"/>, or forgets that one when null.</summary>
    private void SetLeg(string path, Known known, int index, HostLeg? leg)
    {
        var now = known.Legs.FirstOrDefault(l => l.Index == index);
        if (now == leg)
        {
            return; // the usual case: a notification about another link, or one that changes nothing recorded
        }

        var legs = known.Legs.Where(l => l.Index != index).ToList();
        if (leg is not null)
        {
            legs.Add(leg);
            LogLegRecorded(leg.Name, leg.Bridge, path);
        }

        _known[path] = known with { Legs = legs };
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
            if (!_known.ContainsKey(netnsPath))
            {
                return [];
            }

            // What the kernel reported until now first: a leg attached since the last look, or legs already gone.
            LearnLocked([]);
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
    private List<HostLeg> FindLegs(int id, IReadOnlyList<Link> links, Dictionary<int, Link> byIndex)
    {
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
        _stopping = true;
        _watcher?.Join();
        _watch?.Dispose();
        if (_node.IsValueCreated)
        {
            _node.Value.Dispose();
        }
    }
}
