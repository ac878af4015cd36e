using System.Globalization;
using System.Net;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Kernel;

/// <summary>
/// <see cref="INetworkLinks"/> through rtnetlink (a socket opened in the namespace for each call and closed after it,
/// so no socket keeps a task's deleted namespace alive) and /proc/sys read and written inside the namespace.
/// A named namespace is created as <c>ip netns add</c> does (<see cref="NetworkNamespace.CreateNamed"/>).
/// </summary>
public sealed class NetlinkLinks : INetworkLinks
{
    public Task<IReadOnlyDictionary<string, LinkState>> ReadLinksAsync(NetworkNamespacePath netns, CancellationToken ct) => Run(netns, ct, h =>
    {
        var links = h.GetLinks();
        var names = links.ToDictionary(l => l.Index, l => l.Name);
        var ipv4 = h.GetAddresses(AddressFamilyFilter.Inet).ToLookup(a => a.LinkIndex, a => string.Create(CultureInfo.InvariantCulture, $"{a.Ip}/{a.PrefixLength}"));
        return (IReadOnlyDictionary<string, LinkState>)links.ToDictionary(
            l => l.Name,
            l => new LinkState(l.Name, l.Up, names.GetValueOrDefault(l.MasterIndex), ipv4[l.Index].ToArray(), l.Mac),
            StringComparer.Ordinal);
    });

    public async Task<string?> ReadDefaultGatewayAsync(NetworkNamespacePath netns, CancellationToken ct) =>
        (await ReadRoutesAsync(netns, RouteConstantsMain, ct).ConfigureAwait(false)).FirstOrDefault(r => r.Destination == "default" && r.Gateway is not null)?.Gateway;

    public Task<IReadOnlyList<RouteEntry>> ReadRoutesAsync(NetworkNamespacePath netns, int table, CancellationToken ct) => Run(netns, ct, h =>
    {
        var names = h.GetLinks().ToDictionary(l => l.Index, l => l.Name);
        return (IReadOnlyList<RouteEntry>)h.GetRoutes()
            .Where(r => r.Table == (uint)table)
            .Select(r => new RouteEntry(r.Destination is { } d ? d.ToString() : "default", r.Gateway?.ToString(), names.GetValueOrDefault(r.OutputIndex)))
            .ToArray();
    });

    public Task<IReadOnlyList<(string Source, string Table)>> ReadRulesAsync(NetworkNamespacePath netns, int priority, CancellationToken ct) => Run(netns, ct, h =>
        (IReadOnlyList<(string, string)>)h.GetRules()
            .Where(r => r.Priority == (uint)priority)
            .Select(r => (r.Source is { } s ? (s.PrefixLength == 32 ? s.BaseAddress.ToString() : s.ToString()) : "", r.Table.ToString(CultureInfo.InvariantCulture)))
            .ToArray());

    public Task EnsureSysctlsAsync(NetworkNamespacePath netns, IReadOnlyList<(string Key, string Value)> wanted, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Sysctl.Ensure(netns.Path, wanted);
        return Task.CompletedTask;
    }

    public Task DisableIpv6Async(NetworkNamespacePath netns, IReadOnlyList<string> links, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        Sysctl.EnsurePresent(netns.Path, links.Select(l => (LinkIpv6.DisableKey(l), "1")).ToList());
        return Task.CompletedTask;
    }

    public Task EnsureNamespaceAsync(string name, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (!File.Exists(NetworkNamespacePath.Named(name).Path))
        {
            NetworkNamespace.CreateNamed(name);
        }

        return Task.CompletedTask;
    }

    public Task AddBridgeAsync(NetworkNamespacePath netns, string name, CancellationToken ct) =>
        Run(netns, ct, h => h.AddLink(new Link { Name = name, Kind = LinkKinds.Bridge }));

    public Task AddVethAsync(NetworkNamespacePath netns, string name, int? mtu, string peer, string? peerMac, NetworkNamespacePath peerNetns, CancellationToken ct) =>
        Run(netns, ct, h => h.AddLink(new Link
        {
            Name = name,
            Kind = LinkKinds.Veth,
            Mtu = mtu ?? 0,
            Peer = new VethPeer(peer, peerMac, mtu ?? 0, peerNetns.Path),
        }));

    public Task SetLinkAsync(NetworkNamespacePath netns, string name, LinkSettings settings, CancellationToken ct) => Run(netns, ct, h =>
    {
        var link = h.RequireLink(name);
        var master = settings.Master is { } m ? h.RequireLink(m).Index : (int?)null;
        h.ChangeLink(new LinkChange(link.Index) { Mac = settings.Mac, MasterIndex = master, Up = settings.Up ? true : null }, name);
    });

    public Task ReplaceAddressAsync(NetworkNamespacePath netns, string cidr, string link, CancellationToken ct)
    {
        // An interface address keeps its host bits (172.18.0.1/16), which IPNetwork refuses: split it by hand.
        var parts = cidr.Split('/');
        var ip = IPAddress.Parse(parts[0]);
        var prefix = parts.Length == 2 ? int.Parse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture) : 32;
        return Run(netns, ct, h => h.ReplaceAddress(new Address(h.RequireLink(link).Index, ip, prefix), link));
    }

    public Task ReplaceRouteAsync(NetworkNamespacePath netns, RouteEntry route, int table, CancellationToken ct) => Run(netns, ct, h =>
    {
        var r = new Route
        {
            Destination = route.Destination == "default" ? null : IPNetwork.Parse(route.Destination),
            Gateway = route.Gateway is { } g ? IPAddress.Parse(g) : null,
            OutputIndex = route.Device is { } dev ? h.RequireLink(dev).Index : 0,
            Table = (uint)table,
        };
        h.ReplaceRoute(r, route.Device);
    });

    public Task AddRuleAsync(NetworkNamespacePath netns, string source, int table, int priority, CancellationToken ct)
    {
        var from = IPNetwork.Parse(source.Contains('/', StringComparison.Ordinal) ? source : source + "/32");
        return Run(netns, ct, h => h.AddRule(new Rule((uint)priority, from, (uint)table)));
    }

    public Task DeleteRuleAsync(NetworkNamespacePath netns, int priority, CancellationToken ct) => Run(netns, ct, h => h.DeleteRule((uint)priority));

    public Task<bool> TryDeleteLinkAsync(NetworkNamespacePath netns, string name, CancellationToken ct) => Run(netns, ct, h => h.TryDeleteLink(name));

    public Task<bool> TryDeleteNeighbourAsync(NetworkNamespacePath netns, string ip, string link, CancellationToken ct) => Run(netns, ct, h =>
    {
        if (h.GetLink(link) is not { } l)
        {
            return false;
        }

        try
        {
            h.DeleteNeighbour(Neighbour.Arp(l.Index, IPAddress.Parse(ip), null), link);
            return true;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT)
        {
            return false;
        }
    });

    private const int RouteConstantsMain = 254;

    private static Task Run(NetworkNamespacePath netns, CancellationToken ct, Action<RouteHandle> work) => Run(netns, ct, h =>
    {
        work(h);
        return true;
    });

    private static Task<T> Run<T>(NetworkNamespacePath netns, CancellationToken ct, Func<RouteHandle, T> work)
    {
        ct.ThrowIfCancellationRequested();
        using var handle = RouteHandle.Open(netns.Path);
        return Task.FromResult(work(handle));
    }
}
