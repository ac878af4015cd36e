using System.Net;
using static Mesh.Ipvs.Netlink.Route.RouteConstants;
using LibC = Tmds.Linux.LibC;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// A NETLINK_ROUTE socket in the caller's network namespace or in the one at a given path: links, addresses,
/// routes, rules, neighbours and FDB entries, each request acknowledged. A failure raises
/// <see cref="NetlinkException"/> whose operation names the request and the object, e.g.
/// "RTM_NEWNEIGH replace fdb 02:42:0a:ff:00:05 dst 10.0.0.2 dev vx-app self failed: ENODEV (19)". Methods are
/// serialised by an internal lock. The socket holds its namespace alive: open one per piece of work for a namespace
/// that may be deleted (a task's), keep one for the daemon's own.
/// </summary>
public sealed class RouteHandle : IDisposable
{
    private readonly NetlinkSocket _socket;
    private readonly NetlinkWriter _writer = new(512);
    private readonly Lock _lock = new();

    private RouteHandle(NetlinkSocket socket, string? netnsPath)
    {
        _socket = socket;
        NetworkNamespacePath = netnsPath;
    }

    /// <summary>The network namespace this handle works in (null: the opener's).</summary>
    public string? NetworkNamespacePath { get; }

    public static RouteHandle Open(string? netnsPath = null) => new(NetlinkSocket.Open(NETLINK_ROUTE, netnsPath), netnsPath);

    // ---- links ----

    public IReadOnlyList<Link> GetLinks()
    {
        const string op = "RTM_GETLINK dump";
        return Exchange(op, true, (w, seq) => RouteCodec.DumpLinks(w, seq)).Select(m => RouteCodec.ParseLink(m, op)).ToList();
    }

    /// <summary>One link by name; null when there is none (ENODEV).</summary>
    public Link? GetLink(string name)
    {
        string op = $"RTM_GETLINK dev {name}";
        try
        {
            var replies = Exchange(op, false, (w, seq) => RouteCodec.GetLink(w, seq, name));
            return replies.Count == 0 ? throw new NetlinkProtocolException(op, "no RTM_NEWLINK before the ACK") : RouteCodec.ParseLink(replies[0], op);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }
    }

    /// <summary>One link by name; ENODEV naming it when there is none.</summary>
    public Link RequireLink(string name) =>
        GetLink(name) ?? throw new NetlinkException($"RTM_GETLINK dev {name}", Errno.ENODEV, $"no link named '{name}'{Where}");

    /// <summary>Creates a link (bridge, VXLAN device, veth pair); EEXIST when the name is taken.</summary>
    public void AddLink(Link link)
    {
        ArgumentNullException.ThrowIfNull(link);
        string op = $"RTM_NEWLINK add {link.Kind} {link.Name}{(link.Peer is { } p ? $" peer {p.Name}{(p.NamespacePath is { } ns ? $" netns {ns}" : "")}" : "")}";
        int fd = -1;
        try
        {
            if (link.Peer?.NamespacePath is { } path)
            {
                fd = LibCExtras.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
                if (fd < 0) throw new NetlinkException($"{op}: open({path})", LibC.errno);
            }

            int nsFd = fd;
            Exchange(op, false, (w, seq) => RouteCodec.NewLink(w, seq, link, nsFd));
        }
        finally
        {
            if (fd >= 0) LibC.close(fd);
        }
    }

    /// <summary>Changes a link (<c>ip link set</c>); <paramref name="name"/> is for the error text.</summary>
    public void ChangeLink(LinkChange change, string name)
    {
        ArgumentNullException.ThrowIfNull(change);
        var what = string.Join(' ', new[]
        {
            change.Mtu is { } mtu ? $"mtu {mtu}" : null,
            change.MasterIndex is { } master ? (master == 0 ? "nomaster" : $"master ifindex {master}") : null,
            change.Mac is { } mac ? $"address {mac}" : null,
            change.Up is { } up ? (up ? "up" : "down") : null,
        }.OfType<string>());
        Exchange($"RTM_NEWLINK set {name} {what}", false, (w, seq) => RouteCodec.SetLink(w, seq, change));
    }

    /// <summary>Deletes a link by ifindex (a veth's peer goes with it); <paramref name="name"/> is for the error text.</summary>
    public void DeleteLink(int index, string name) => Exchange($"RTM_DELLINK {name}", false, (w, seq) => RouteCodec.DeleteLink(w, seq, index));

    /// <summary>Deletes a link by name; false when there was none.</summary>
    public bool TryDeleteLink(string name)
    {
        if (GetLink(name) is not { } link) return false;
        try
        {
            DeleteLink(link.Index, name);
            return true;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return false; // gone in between
        }
    }

    // ---- namespace ids ----

    /// <summary>
    /// The id this handle's namespace knows the namespace at <paramref name="netnsPath"/> by (what its links'
    /// <see cref="Link.PeerNetnsId"/> say for a veth into it), given one first when it has none. The namespace file is
    /// open only for the request: nothing keeps the namespace alive afterwards. The id names the namespace while it
    /// lives; the kernel may give it to another one after (see <see cref="HoldNamespace"/>).
    /// </summary>
    public int GetOrAssignNetnsId(string netnsPath)
    {
        using var hold = HoldNamespace(netnsPath);
        return hold.Id;
    }

    /// <summary>
    /// Opens the network namespace file at <paramref name="netnsPath"/> (refused when it is no network namespace, or a
    /// symlink outside /proc: see <see cref="NetworkNamespace.Identify"/>; <see cref="FileNotFoundException"/> when
    /// absent) and returns it held, with the id this handle's namespace knows it by (given one first when it has none).
    /// </summary>
    public NamespaceHold HoldNamespace(string netnsPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        string op = $"RTM_GETNSID {netnsPath}";
        var (fd, ns) = NetworkNamespace.OpenIdentified(netnsPath);
        try
        {
            if (ReadNetnsId(op, fd) is not { } id)
            {
                try
                {
                    Exchange($"RTM_NEWNSID {netnsPath} auto", false, (w, seq) => RouteCodec.AssignNetnsId(w, seq, fd));
                }
                catch (NetlinkException e) when (e.Errno == Errno.EEXIST)
                {
                    // Given one meanwhile (a veth into it was created).
                }

                id = ReadNetnsId(op, fd) ?? throw new NetlinkProtocolException(op + Where, "still no id after RTM_NEWNSID");
            }

            return new NamespaceHold(fd, ns, id);
        }
        catch
        {
            LibC.close(fd);
            throw;
        }
    }

    private int? ReadNetnsId(string op, int fd)
    {
        var replies = Exchange(op, false, (w, seq) => RouteCodec.GetNetnsId(w, seq, fd));
        return replies.Count == 0 ? throw new NetlinkProtocolException(op + Where, "no RTM_NEWNSID before the ACK") : RouteCodec.ParseNetnsId(replies[0], op);
    }

    // ---- addresses ----

    public IReadOnlyList<Address> GetAddresses(AddressFamilyFilter family = AddressFamilyFilter.All)
    {
        const string op = "RTM_GETADDR dump";
        return Exchange(op, true, (w, seq) => RouteCodec.DumpAddresses(w, seq, (byte)family)).Select(m => RouteCodec.ParseAddress(m, op)).ToList();
    }

    public void ReplaceAddress(Address address, string linkName) =>
        Exchange($"RTM_NEWADDR replace {address.Ip}/{address.PrefixLength} dev {linkName}", false, (w, seq) => RouteCodec.ReplaceAddress(w, seq, address));

    // ---- routes ----

    /// <summary>The unicast routes of every table; filter by <see cref="Route.Table"/>.</summary>
    public IReadOnlyList<Route> GetRoutes(AddressFamilyFilter family = AddressFamilyFilter.Inet)
    {
        const string op = "RTM_GETROUTE dump";
        return Exchange(op, true, (w, seq) => RouteCodec.DumpRoutes(w, seq, (byte)family)).Select(m => RouteCodec.ParseRoute(m, op)).OfType<Route>().ToList();
    }

    public void ReplaceRoute(Route route, string? linkName = null) =>
        Exchange($"RTM_NEWROUTE replace {Describe(route, linkName)}", false, (w, seq) => RouteCodec.ReplaceRoute(w, seq, route));

    public void DeleteRoute(Route route, string? linkName = null) =>
        Exchange($"RTM_DELROUTE {Describe(route, linkName)}", false, (w, seq) => RouteCodec.DeleteRoute(w, seq, route));

    // ---- rules ----

    public IReadOnlyList<Rule> GetRules(AddressFamilyFilter family = AddressFamilyFilter.Inet)
    {
        const string op = "RTM_GETRULE dump";
        return Exchange(op, true, (w, seq) => RouteCodec.DumpRules(w, seq, (byte)family)).Select(m => RouteCodec.ParseRule(m, op)).ToList();
    }

    public void AddRule(Rule rule) => Exchange($"RTM_NEWRULE add {rule}", false, (w, seq) => RouteCodec.AddRule(w, seq, rule));

    public void DeleteRule(uint priority, AddressFamilyFilter family = AddressFamilyFilter.Inet) =>
        Exchange($"RTM_DELRULE priority {priority}", false, (w, seq) => RouteCodec.DeleteRule(w, seq, (byte)family, priority));

    // ---- neighbours and FDB ----

    /// <summary>
    /// Every neighbour (or, for <see cref="NeighbourFamily.Bridge"/>, FDB) entry as a value, passed to
    /// <paramref name="onEntry"/> as its datagram arrives: nothing is kept per entry, so a dump of 100,000 entries
    /// (a node's overlay at 10,000 services × 5 tasks) leaves no large lists behind. A dump interrupted by a
    /// concurrent change is read once more from the start: <paramref name="onRestart"/> is called first, to drop
    /// what was passed so far.
    /// </summary>
    public void ForEachNeighbour(NeighbourFamily family, Action<NeighbourEntry> onEntry, Action onRestart)
    {
        ArgumentNullException.ThrowIfNull(onEntry);
        ArgumentNullException.ThrowIfNull(onRestart);
        string op = (family == NeighbourFamily.Bridge ? "RTM_GETNEIGH dump fdb" : "RTM_GETNEIGH dump") + Where;
        Stream(op, true, (w, seq) => RouteCodec.DumpNeighbours(w, seq, family), m => onEntry(RouteCodec.ReadNeighbourEntry(m, op)), onRestart);
    }

    public void ReplaceNeighbour(Neighbour neighbour, string linkName) =>
        Exchange($"RTM_NEWNEIGH replace {Describe(neighbour, linkName)}", false, (w, seq) => RouteCodec.ReplaceNeighbour(w, seq, neighbour));

    public void DeleteNeighbour(Neighbour neighbour, string linkName) =>
        Exchange($"RTM_DELNEIGH {Describe(neighbour, linkName)}", false, (w, seq) => RouteCodec.DeleteNeighbour(w, seq, neighbour));

    private string Where => NetworkNamespacePath is null ? "" : $" in {NetworkNamespacePath}";

    private static string Describe(Route r, string? linkName) =>
        $"{(r.Destination is { } d ? d.ToString() : "default")}{(r.Gateway is { } g ? $" via {g}" : "")}{(linkName is not null ? $" dev {linkName}" : r.OutputIndex != 0 ? $" ifindex {r.OutputIndex}" : "")}{(r.Table != RT_TABLE_MAIN ? $" table {r.Table}" : "")}";

    private static string Describe(Neighbour n, string linkName) => n.Family == NeighbourFamily.Bridge
        ? $"fdb {n.Mac}{(n.Destination is { } d ? $" dst {d}" : "")} dev {linkName}{(n.Self ? " self" : "")}"
        : $"neigh {n.Destination}{(n.Mac is { } m ? $" lladdr {m}" : "")} dev {linkName}";

    private List<NetlinkMessage> Exchange(string operation, bool dump, Action<NetlinkWriter, uint> build)
    {
        var replies = new List<NetlinkMessage>();
        Stream(operation + Where, dump, build, replies.Add, replies.Clear);
        return replies;
    }

    /// <summary>
    /// Sends the request <paramref name="build"/> writes and passes each data message of the reply to
    /// <paramref name="onData"/>. A dump interrupted by a concurrent change (NLM_F_DUMP_INTR) is read once more from the
    /// start, <paramref name="onRestart"/> called first to drop what was passed; a second interruption is the error.
    /// </summary>
    private void Stream(string operation, bool dump, Action<NetlinkWriter, uint> build, Action<NetlinkMessage> onData, Action onRestart)
    {
        lock (_lock)
        {
            for (var attempt = 1; ; attempt++)
            {
                _writer.Clear();
                uint seq = _socket.NextSequence();
                build(_writer, seq);
                try
                {
                    _socket.Stream(_writer.WrittenSpan, seq, operation, m =>
                    {
                        onData(m);
                        return true;
                    });
                    return;
                }
                catch (NetlinkException e) when (dump && e.Errno == Errno.EINTR && attempt == 1)
                {
                    onRestart();
                }
            }
        }
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>Which address family a dump covers.</summary>
public enum AddressFamilyFilter : byte
{
    All = AF_UNSPEC,
    Inet = AF_INET,
    Inet6 = AF_INET6,
}
