using System.Net;
using Mesh.Ingress.Kernel;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Overlay;

/// <summary>Where the overlays read and change the kernel: the daemon's own network namespace.</summary>
public interface IOverlayKernel
{
    /// <summary>The namespace this kernel reads and changes.</summary>
    NetworkNamespacePath Netns { get; }

    /// <summary>Every link with its IPv4 addresses, and the FDB (<c>self</c> entries) and neighbours of each of Mesh's VXLAN devices (<see cref="OverlayNames.VxlanPrefix"/>).</summary>
    OverlayKernelState Read();

    void Apply(OverlayChange change);
}

/// <summary>
/// <see cref="IOverlayKernel"/> through rtnetlink: a read is four dumps (links, IPv4 addresses, the bridge family's
/// FDB, IPv4 neighbours) whatever the number of networks, a change one acknowledged request; no process is started.
/// The socket is opened at first use and kept (the daemon's namespace lives as long as the daemon).
/// </summary>
/// <param name="netns">The daemon's own namespace unless given (the kernel tests give a scratch one).</param>
public sealed class OverlayKernel(NetworkNamespacePath? netns = null) : IOverlayKernel, IDisposable
{
    private readonly Lazy<RouteHandle> _handle = new(() => RouteHandle.Open(netns?.Path), LazyThreadSafetyMode.ExecutionAndPublication);
    private readonly Dictionary<string, int> _indexes = new(StringComparer.Ordinal);
    private Dictionary<string, (int Fdb, int Neighbours)> _lastCounts = [];

    public NetworkNamespacePath Netns { get; } = netns ?? NetworkNamespacePath.Current;

    private RouteHandle Handle => _handle.Value;

    public OverlayKernelState Read()
    {
        var links = Handle.GetLinks();
        var names = links.ToDictionary(l => l.Index, l => l.Name);
        var ipv4 = Handle.GetAddresses(AddressFamilyFilter.Inet).ToLookup(a => a.LinkIndex, a => a.Ip.ToString());
        lock (_indexes)
        {
            _indexes.Clear();
            foreach (var l in links)
            {
                _indexes[l.Name] = l.Index;
            }
        }

        var ipv6 = ReadIpv6(links.Where(l => l.Kind is LinkKinds.Bridge or LinkKinds.Vxlan).Select(l => l.Name).Where(LinkIpv6.HasKey).ToList());

        // The entries of Mesh's own VXLAN devices only (IPv4, as Mesh makes them): anyone else's device, an IPv6 one
        // among them, is not read, let alone changed.
        var vxlans = links.Where(l => l.Kind == LinkKinds.Vxlan && l.Name.StartsWith(OverlayNames.VxlanPrefix, StringComparison.Ordinal))
            .ToDictionary(l => l.Index, l => l.Name);
        // Values straight from each datagram: at 10,000 services × 5 tasks these are 100,000 entries at every resync,
        // which as records with an IPAddress and strings each (and the dump's messages all held until parsed) were
        // ~100 MB allocated per read. The lists are sized from the last read, so they are made once, not grown.
        var fdb = ReadEntries<KernelFdbEntry>(NeighbourFamily.Bridge, vxlans, name => _lastCounts.GetValueOrDefault(name).Fdb,
            n => n.Self && n.Mac is { } mac ? new KernelFdbEntry(mac, n.Destination is { } d ? Ipv4(d, n) : null, n.Permanent) : null);
        var neighbours = ReadEntries<KernelNeighbour>(NeighbourFamily.Inet, vxlans, name => _lastCounts.GetValueOrDefault(name).Neighbours,
            n => n.Destination is { } ip ? new KernelNeighbour(Ipv4(ip, n), n.Mac, n.Permanent) : null);
        _lastCounts = vxlans.ToDictionary(p => p.Value, p => (fdb[p.Key].Count, neighbours[p.Key].Count), StringComparer.Ordinal);

        return new OverlayKernelState(
            links.ToDictionary(
                l => l.Name,
                l => new KernelLink(l.Name, l.Kind, l.Up, names.GetValueOrDefault(l.MasterIndex), l.Mtu, ipv4[l.Index].ToArray(),
                    l.Vxlan is { } v ? new VxlanSettings((int)v.Id, v.Port, v.Local?.ToString(), names.GetValueOrDefault(v.DeviceIndex), v.Learning, v.Proxy) : null,
                    ipv6.TryGetValue(l.Name, out var on) ? on : null),
                StringComparer.Ordinal),
            vxlans.ToDictionary(p => p.Value, p => (IReadOnlyList<KernelFdbEntry>)fdb[p.Key], StringComparer.Ordinal),
            vxlans.ToDictionary(p => p.Value, p => (IReadOnlyList<KernelNeighbour>)neighbours[p.Key], StringComparer.Ordinal));
    }

    /// <summary>
    /// One dump of <paramref name="family"/>: per VXLAN device of <paramref name="vxlans"/> (by ifindex) the entries
    /// <paramref name="make"/> keeps (null: not one of ours to compare), in a list sized by <paramref name="lastCount"/>.
    /// Entries of other devices are skipped before <paramref name="make"/> sees them.
    /// </summary>
    private Dictionary<int, List<T>> ReadEntries<T>(
        NeighbourFamily family, Dictionary<int, string> vxlans, Func<string, int> lastCount, Func<NeighbourEntry, T?> make)
        where T : struct
    {
        var lists = vxlans.ToDictionary(p => p.Key, p => new List<T>(lastCount(p.Value)));
        Handle.ForEachNeighbour(
            family,
            n =>
            {
                if (lists.TryGetValue(n.LinkIndex, out var list) && make(n) is { } entry) list.Add(entry);
            },
            () =>
            {
                foreach (var list in lists.Values) list.Clear();
            });
        return lists;
    }

    public void Apply(OverlayChange change)
    {
        switch (change)
        {
            case AddBridge b:
                Handle.AddLink(new Link { Name = b.Name, Kind = LinkKinds.Bridge, Mtu = b.Mtu });
                Learn(b.Name);
                break;
            case AddVxlan v:
                Handle.AddLink(new Link
                {
                    Name = v.Name,
                    Kind = LinkKinds.Vxlan,
                    Mtu = v.Mtu,
                    Vxlan = new Mesh.Ipvs.Netlink.Route.VxlanSettings((uint)v.Vni, (ushort)v.Port, IPAddress.Parse(v.Local), Index(v.Underlay), Learning: false, Proxy: true),
                });
                Learn(v.Name);
                break;
            case SetLink s:
                Handle.ChangeLink(new LinkChange(Index(s.Name)) { Mtu = s.Mtu, MasterIndex = s.Master is null ? null : Index(s.Master), Up = s.Up ? true : null }, s.Name);
                break;
            case DisableIpv6 d:
                Sysctl.EnsurePresent(Netns.Path, [(LinkIpv6.DisableKey(d.Name), "1")]);
                break;
            case DeleteLink d:
                Handle.DeleteLink(Index(d.Name), d.Name);
                lock (_indexes)
                {
                    _indexes.Remove(d.Name);
                }

                break;
            case ReplaceFdb f:
                Handle.ReplaceNeighbour(Neighbour.Fdb(Index(f.Vxlan), f.Mac, IPAddress.Parse(f.Vtep)), f.Vxlan);
                break;
            case DeleteFdb f:
                Handle.DeleteNeighbour(Neighbour.Fdb(Index(f.Vxlan), f.Mac, f.Dst is null ? null : IPAddress.Parse(f.Dst)), f.Vxlan);
                break;
            case ReplaceNeighbour n:
                Handle.ReplaceNeighbour(Neighbour.Arp(Index(n.Vxlan), IPAddress.Parse(n.Ip), n.Mac), n.Vxlan);
                break;
            case DeleteNeighbour n:
                Handle.DeleteNeighbour(Neighbour.Arp(Index(n.Vxlan), IPAddress.Parse(n.Ip), null), n.Vxlan);
                break;
            default:
                throw new ArgumentException($"unknown overlay change {change.GetType().Name}", nameof(change));
        }
    }

    /// <summary>Mesh's IPv4 VXLAN devices hold IPv4 entries only (the kernel refuses others; an IPv4 dump has no other).</summary>
    private static uint Ipv4(IpValue address, NeighbourEntry entry) =>
        address.IsV6 ? throw new InvalidOperationException($"{entry.Family} entry at {address} on ifindex {entry.LinkIndex}: the overlays hold IPv4 entries only") : address.V4Bits;

    /// <summary>Whether IPv6 is on, by link (absent: the kernel has no IPv6, or the link went since the dump).</summary>
    private Dictionary<string, bool> ReadIpv6(List<string> links)
    {
        var values = Sysctl.ReadPresent(Netns.Path, links.Select(LinkIpv6.DisableKey).ToList());
        return links.Select((name, i) => (name, values[i])).Where(p => p.Item2 is not null).ToDictionary(p => p.name, p => p.Item2 != "1", StringComparer.Ordinal);
    }

    /// <summary>The ifindex of a link: from the last read, or asked (a link made since, or by someone else).</summary>
    private int Index(string name)
    {
        lock (_indexes)
        {
            if (_indexes.TryGetValue(name, out var index))
            {
                return index;
            }
        }

        return Learn(name);
    }

    private int Learn(string name)
    {
        var index = Handle.RequireLink(name).Index;
        lock (_indexes)
        {
            _indexes[name] = index;
        }

        return index;
    }

    public void Dispose()
    {
        if (_handle.IsValueCreated)
        {
            _handle.Value.Dispose();
        }
    }
}
