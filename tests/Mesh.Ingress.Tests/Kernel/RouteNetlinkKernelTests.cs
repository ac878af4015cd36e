using System.Net;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.EndToEnd;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Route;

namespace Mesh.Ingress.Tests.Kernel;

/// <summary>
/// Mesh's rtnetlink against this kernel, in a throw-away namespace, with iproute2 as the independent reader: what
/// Mesh writes, <c>ip</c>/<c>bridge</c> show, and what they write, Mesh reads back. Errors name the object.
/// </summary>
public sealed class RouteNetlinkKernelTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _ns = $"rtnl-{Environment.ProcessId}";
    private readonly string _peer = $"rtnl-peer-{Environment.ProcessId}";

    private string NetnsPath => $"/var/run/netns/{_ns}";

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            foreach (var ns in new[] { _ns, _peer })
            {
                await Shell.RunAsync("ip", "netns", "del", ns);
                await Shell.CheckedAsync("ip", "netns", "add", ns);
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
            await Shell.RunAsync("ip", "netns", "del", _peer);
        }
    }

    [LabFact]
    public async Task Bridge_vxlan_veth_fdb_neighbours_addresses_routes_rules_written_read_back_and_deleted()
    {
        using var h = RouteHandle.Open(NetnsPath);

        // An underlay with an address, as the node's: a veth pair (no dummy module on every host).
        h.AddLink(new Link { Name = "under0", Kind = LinkKinds.Veth, Peer = new VethPeer("under1") });
        var under = h.RequireLink("under0");
        h.ReplaceAddress(new Address(under.Index, IPAddress.Parse("192.168.50.2"), 24), "under0");
        h.ChangeLink(new LinkChange(under.Index) { Up = true }, "under0");

        h.AddLink(new Link { Name = "br-t", Kind = LinkKinds.Bridge, Mtu = 1450 });
        h.AddLink(new Link { Name = "vx-t", Kind = LinkKinds.Vxlan, Mtu = 1450, Vxlan = new VxlanSettings(4097, 4789, IPAddress.Parse("192.168.50.2"), under.Index, false, true) });
        var bridge = h.RequireLink("br-t");
        var vxlan = h.RequireLink("vx-t");
        h.ChangeLink(new LinkChange(bridge.Index) { Up = true }, "br-t");
        h.ChangeLink(new LinkChange(vxlan.Index) { MasterIndex = bridge.Index, Up = true }, "vx-t");
        h.AddLink(new Link { Name = "leg-t", Kind = LinkKinds.Veth, Mtu = 1450, Peer = new VethPeer("eth0", "02:42:0a:ff:00:02", 1450, $"/var/run/netns/{_peer}") });

        var ipLink = await Shell.CheckedAsync("ip", "-n", _ns, "-d", "link", "show", "vx-t");
        Assert.Contains("vxlan id 4097 local 192.168.50.2 dev under0", ipLink, StringComparison.Ordinal);
        Assert.Contains("dstport 4789", ipLink, StringComparison.Ordinal);
        Assert.Contains("nolearning", ipLink, StringComparison.Ordinal);
        Assert.Contains("proxy", ipLink, StringComparison.Ordinal);
        Assert.Contains("master br-t", ipLink, StringComparison.Ordinal);
        Assert.Contains("mtu 1450", ipLink, StringComparison.Ordinal);
        Assert.Contains("link/ether 02:42:0a:ff:00:02", await Shell.CheckedAsync("ip", "-n", _peer, "link", "show", "eth0"), StringComparison.Ordinal);

        var read = h.GetLinks().ToDictionary(l => l.Name);
        Assert.Equal(new VxlanSettings(4097, 4789, IPAddress.Parse("192.168.50.2"), under.Index, false, true), read["vx-t"].Vxlan);
        Assert.Equal((LinkKinds.Bridge, true, 1450), (read["br-t"].Kind, read["br-t"].Up, read["br-t"].Mtu));
        Assert.Equal(bridge.Index, read["vx-t"].MasterIndex);
        Assert.False(read.ContainsKey("eth0")); // created in the other namespace

        // Each end of the leg names the other (IFLA_LINK) in another namespace (IFLA_LINK_NETNSID): how the daemon finds a task's legs.
        using (var peer = RouteHandle.Open($"/var/run/netns/{_peer}"))
        {
            var inside = peer.RequireLink("eth0");
            Assert.Equal((read["leg-t"].Index, true), (inside.PeerIndex, inside.PeerNetnsId is not null));
            Assert.Equal((inside.Index, true), (read["leg-t"].PeerIndex, read["leg-t"].PeerNetnsId is not null));
        }

        Assert.Null(read["br-t"].PeerNetnsId);

        // The id a namespace is known by here is the one its veths' IFLA_LINK_NETNSID say (how the daemon finds the legs
        // of a deleted task namespace); one without an id yet is given one, the same on every ask, as ip netns list-id shows.
        Assert.Equal(read["leg-t"].PeerNetnsId, h.GetOrAssignNetnsId($"/var/run/netns/{_peer}"));
        var own = h.GetOrAssignNetnsId("/proc/self/ns/net");
        Assert.NotEqual(read["leg-t"].PeerNetnsId, own);
        Assert.Equal(own, h.GetOrAssignNetnsId("/proc/self/ns/net"));
        Assert.Contains($"nsid {own} ", await Shell.CheckedAsync("ip", "-n", _ns, "netns", "list-id"), StringComparison.Ordinal);

        // FDB and neighbours, as the overlays write them.
        h.ReplaceNeighbour(Neighbour.Fdb(vxlan.Index, "02:42:0a:ff:00:05", IPAddress.Parse("192.168.50.3")), "vx-t");
        h.ReplaceNeighbour(Neighbour.Arp(vxlan.Index, IPAddress.Parse("10.255.0.5"), "02:42:0a:ff:00:05"), "vx-t");
        Assert.Contains("02:42:0a:ff:00:05 dst 192.168.50.3 self permanent", await Shell.CheckedAsync("bridge", "-n", _ns, "fdb", "show", "dev", "vx-t"), StringComparison.Ordinal);
        Assert.Contains("10.255.0.5 lladdr 02:42:0a:ff:00:05 PERMANENT", await Shell.CheckedAsync("ip", "-n", _ns, "neigh", "show", "dev", "vx-t"), StringComparison.Ordinal);
        // Written by iproute2, read by Mesh.
        await Shell.CheckedAsync("bridge", "-n", _ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vx-t", "dst", "192.168.50.9", "self", "permanent");
        var fdb = Neighbours(h, NeighbourFamily.Bridge, vxlan.Index).Where(n => n.Self).Select(n => $"{MacText.Format(n.Mac!.Value)} {n.Destination} {n.Permanent}").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["00:00:00:00:00:00 192.168.50.9 True", "02:42:0a:ff:00:05 192.168.50.3 True"], fdb);
        var arp = Assert.Single(Neighbours(h, NeighbourFamily.Inet, vxlan.Index));
        Assert.Equal(("10.255.0.5", "02:42:0a:ff:00:05", true), (arp.Destination?.ToString(), MacText.Format(arp.Mac!.Value), arp.Permanent));

        h.DeleteNeighbour(Neighbour.Fdb(vxlan.Index, "02:42:0a:ff:00:05", IPAddress.Parse("192.168.50.3")), "vx-t");
        h.DeleteNeighbour(Neighbour.Fdb(vxlan.Index, "00:00:00:00:00:00", IPAddress.Parse("192.168.50.9")), "vx-t");
        h.DeleteNeighbour(Neighbour.Arp(vxlan.Index, IPAddress.Parse("10.255.0.5"), null), "vx-t");
        Assert.DoesNotContain(Neighbours(h, NeighbourFamily.Bridge, vxlan.Index), n => n.Self);
        Assert.Empty(Neighbours(h, NeighbourFamily.Inet, vxlan.Index));

        // Addresses, routes (main and a numbered table), rules.
        h.ReplaceAddress(new Address(bridge.Index, IPAddress.Parse("172.18.0.1"), 16), "br-t");
        Assert.Contains(h.GetAddresses(AddressFamilyFilter.Inet), a => a.LinkIndex == bridge.Index && a.Ip.Equals(IPAddress.Parse("172.18.0.1")) && a.PrefixLength == 16);
        h.ReplaceRoute(new Route { Destination = IPNetwork.Parse("10.99.0.0/16"), Gateway = IPAddress.Parse("192.168.50.1"), OutputIndex = under.Index }, "under0");
        h.ReplaceRoute(new Route { Gateway = IPAddress.Parse("192.168.50.1") });
        h.ReplaceRoute(new Route { Destination = IPNetwork.Parse("10.98.0.0/16"), OutputIndex = bridge.Index, Table = 1000 }, "br-t");
        Assert.Contains("default via 192.168.50.1 dev under0", await Shell.CheckedAsync("ip", "-n", _ns, "route", "show"), StringComparison.Ordinal);
        Assert.Contains("10.99.0.0/16 via 192.168.50.1 dev under0", await Shell.CheckedAsync("ip", "-n", _ns, "route", "show"), StringComparison.Ordinal);
        Assert.Equal("10.98.0.0/16 dev br-t scope link", (await Shell.CheckedAsync("ip", "-n", _ns, "route", "show", "table", "1000")).Trim());
        var routes = h.GetRoutes();
        Assert.Contains(routes, r => r.Table == 254 && r.Destination is null && r.Gateway!.Equals(IPAddress.Parse("192.168.50.1")));
        Assert.Contains(routes, r => r.Table == 1000 && r.Destination == IPNetwork.Parse("10.98.0.0/16") && r.OutputIndex == bridge.Index && r.Gateway is null);

        h.AddRule(new Rule(1000, IPNetwork.Parse("10.255.0.5/32"), 1000));
        Assert.Contains("1000:\tfrom 10.255.0.5 lookup 1000", await Shell.CheckedAsync("ip", "-n", _ns, "rule", "show"), StringComparison.Ordinal);
        Assert.Contains(h.GetRules(), r => r.Priority == 1000 && r.Source == IPNetwork.Parse("10.255.0.5/32") && r.Table == 1000);
        var twice = Assert.Throws<NetlinkException>(() => h.AddRule(new Rule(1000, IPNetwork.Parse("10.255.0.5/32"), 1000)));
        Assert.Equal(Errno.EEXIST, twice.Errno);
        h.DeleteRule(1000);
        Assert.DoesNotContain(h.GetRules(), r => r.Priority == 1000);

        // Changes and deletion.
        h.ChangeLink(new LinkChange(bridge.Index) { Mtu = 1400 }, "br-t");
        Assert.Equal(1400, h.RequireLink("br-t").Mtu);
        Assert.True(h.TryDeleteLink("vx-t"));
        Assert.False(h.TryDeleteLink("vx-t"));
        Assert.Null(h.GetLink("vx-t"));
    }

    [LabFact]
    public void Errors_name_the_operation_the_object_and_the_errno_and_change_nothing()
    {
        using var h = RouteHandle.Open(NetnsPath);
        var before = h.GetLinks().Select(l => l.Name).Order(StringComparer.Ordinal).ToList();

        var missing = Assert.Throws<NetlinkException>(() => h.RequireLink("no-such-link"));
        Assert.Equal(Errno.ENODEV, missing.Errno);
        Assert.Contains("no-such-link", missing.Message, StringComparison.Ordinal);
        Assert.Contains(NetnsPath, missing.Message, StringComparison.Ordinal);

        // A VXLAN device on an underlay ifindex that does not exist.
        var vx = Assert.Throws<NetlinkException>(() => h.AddLink(new Link { Name = "vx-bad", Kind = LinkKinds.Vxlan, Vxlan = new VxlanSettings(7, 4789, null, 999_999, false, true) }));
        Assert.Contains("RTM_NEWLINK add vxlan vx-bad", vx.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.ENODEV, vx.Errno);

        // An FDB entry on a link index that does not exist.
        var fdb = Assert.Throws<NetlinkException>(() => h.ReplaceNeighbour(Neighbour.Fdb(999_999, "02:42:0a:ff:00:05", IPAddress.Parse("192.168.50.3")), "vx-gone"));
        Assert.Contains("fdb 02:42:0a:ff:00:05 dst 192.168.50.3 dev vx-gone self", fdb.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.ENODEV, fdb.Errno);

        h.AddLink(new Link { Name = "br-dup", Kind = LinkKinds.Bridge });
        var dup = Assert.Throws<NetlinkException>(() => h.AddLink(new Link { Name = "br-dup", Kind = LinkKinds.Bridge }));
        Assert.Equal(Errno.EEXIST, dup.Errno);
        Assert.Contains("br-dup", dup.Message, StringComparison.Ordinal);
        Assert.True(h.TryDeleteLink("br-dup"));

        Assert.Equal(before, h.GetLinks().Select(l => l.Name).Order(StringComparer.Ordinal).ToList());
        Assert.Throws<NetworkNamespaceException>(() => RouteHandle.Open("/var/run/netns/rtnl-no-such-namespace"));
    }

    [LabFact]
    public async Task The_daemons_link_operations_read_back_what_they_wrote()
    {
        var links = new NetlinkLinks();
        var ns = new NetworkNamespacePath(NetnsPath);
        await links.AddBridgeAsync(ns, "gw-t", CancellationToken.None);
        await links.ReplaceAddressAsync(ns, "172.18.0.1/16", "gw-t", CancellationToken.None); // host bits set, as interface addresses are
        await links.SetLinkAsync(ns, "gw-t", new LinkSettings(Up: true), CancellationToken.None);
        await links.AddVethAsync(ns, "leg-h", 1450, "gw0", "02:42:ac:12:00:05", new NetworkNamespacePath($"/var/run/netns/{_peer}"), CancellationToken.None);
        await links.SetLinkAsync(ns, "leg-h", new LinkSettings(Master: "gw-t", Up: true), CancellationToken.None);
        var peer = new NetworkNamespacePath($"/var/run/netns/{_peer}");
        await links.ReplaceAddressAsync(peer, "172.18.0.5/16", "gw0", CancellationToken.None);
        await links.SetLinkAsync(peer, "gw0", new LinkSettings(Up: true), CancellationToken.None);
        await links.ReplaceRouteAsync(peer, new RouteEntry("default", "172.18.0.1", "gw0"), 254, CancellationToken.None);
        await links.ReplaceRouteAsync(peer, new RouteEntry("10.255.0.0/16", null, "gw0"), 4096, CancellationToken.None);
        await links.AddRuleAsync(peer, "172.18.0.5", 4096, 4096, CancellationToken.None);

        var host = await links.ReadLinksAsync(ns, CancellationToken.None);
        Assert.Equal(["172.18.0.1/16"], host["gw-t"].Ipv4Addresses);
        Assert.Equal(("gw-t", true), (host["leg-h"].Master, host["leg-h"].Up));
        var inside = await links.ReadLinksAsync(peer, CancellationToken.None);
        Assert.Equal(("02:42:ac:12:00:05", true), (inside["gw0"].Mac, inside["gw0"].Up));
        Assert.Equal("172.18.0.1", await links.ReadDefaultGatewayAsync(peer, CancellationToken.None));
        Assert.Equal([new RouteEntry("10.255.0.0/16", null, "gw0")], await links.ReadRoutesAsync(peer, 4096, CancellationToken.None));
        Assert.Equal([("172.18.0.5", "4096")], await links.ReadRulesAsync(peer, 4096, CancellationToken.None));
        Assert.Contains("default via 172.18.0.1 dev gw0", await Shell.CheckedAsync("ip", "-n", _peer, "route", "show"), StringComparison.Ordinal);

        Assert.True(await links.TryDeleteLinkAsync(ns, "leg-h", CancellationToken.None));
        Assert.False(await links.TryDeleteLinkAsync(ns, "leg-h", CancellationToken.None));
        Assert.False(await links.TryDeleteNeighbourAsync(ns, "172.18.0.9", "gw-t", CancellationToken.None));
        var missing = await Assert.ThrowsAsync<NetlinkException>(() => links.SetLinkAsync(ns, "no-such-link", new LinkSettings(Up: true), CancellationToken.None));
        Assert.Contains("no-such-link", missing.Message, StringComparison.Ordinal);
    }

    [LabFact]
    public async Task A_named_namespace_is_created_as_ip_netns_add_does_and_seen_by_iproute2()
    {
        var name = $"rtnl-add-{Environment.ProcessId}";
        try
        {
            await new NetlinkLinks().EnsureNamespaceAsync(name, CancellationToken.None);
            Assert.Contains(name, await Shell.CheckedAsync("ip", "netns", "list"), StringComparison.Ordinal);
            Assert.Contains("lo:", await Shell.CheckedAsync("ip", "-n", name, "link", "show", "lo"), StringComparison.Ordinal);
            Assert.NotEqual(NetworkNamespace.Identify("/proc/self/ns/net"), NetworkNamespace.Identify($"/var/run/netns/{name}"));
            await new NetlinkLinks().EnsureNamespaceAsync(name, CancellationToken.None); // there already: nothing to do

            var e = Assert.Throws<NetworkNamespaceException>(() => NetworkNamespace.CreateNamed(name)); // O_EXCL
            Assert.Equal(Errno.EEXIST, e.Errno);
            Assert.Throws<ArgumentException>(() => NetworkNamespace.CreateNamed("../etc"));
        }
        finally
        {
            await Shell.RunAsync("ip", "netns", "del", name);
        }
    }

    [LabFact]
    public void Sysctls_are_read_and_written_inside_the_namespace_only()
    {
        var host = Sysctl.Read(null, ["net.ipv4.ip_forward"])[0];
        var wanted = host == "1" ? "0" : "1";
        Assert.Equal(["net.ipv4.ip_forward"], Sysctl.Ensure(NetnsPath, [("net.ipv4.ip_forward", wanted)]));
        Assert.Equal(wanted, Sysctl.Read(NetnsPath, ["net.ipv4.ip_forward"])[0]);
        Assert.Empty(Sysctl.Ensure(NetnsPath, [("net.ipv4.ip_forward", wanted)])); // already so: nothing written
        Assert.Equal(host, Sysctl.Read(null, ["net.ipv4.ip_forward"])[0]); // the host's own is untouched

        Assert.Throws<ArgumentException>(() => Sysctl.Read(NetnsPath, ["net/../../etc/passwd"]));
        var e = Assert.Throws<IOException>(() => Sysctl.Read(NetnsPath, ["net.ipv4.conf.no-such-link.forwarding"]));
        Assert.Contains("net.ipv4.conf.no-such-link.forwarding", e.Message, StringComparison.Ordinal);
    }

    /// <summary>The entries of one link, as the overlays read them (<see cref="RouteHandle.ForEachNeighbour"/>).</summary>
    private static List<NeighbourEntry> Neighbours(RouteHandle h, NeighbourFamily family, int linkIndex)
    {
        var entries = new List<NeighbourEntry>();
        h.ForEachNeighbour(family, n => { if (n.LinkIndex == linkIndex) entries.Add(n); }, entries.Clear);
        return entries;
    }
}
