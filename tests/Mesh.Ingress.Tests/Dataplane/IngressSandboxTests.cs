using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Tests.Kernel;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// The sandbox check that runs at every resync: on a converged node it only reads (a handful of netlink dumps),
/// on a fresh one it builds everything, and it never writes what is already there.
/// </summary>
public class IngressSandboxTests
{
    private static readonly NodeNetworkOptions Options = new() { IngressSandbox = "sandbox-test-never-created" };

    private static readonly NetworkNamespacePath Host = NetworkNamespacePath.Current;
    private static readonly NetworkNamespacePath Sandbox = NetworkNamespacePath.Named(Options.IngressSandbox);
    private const string InSandbox = "[/var/run/netns/sandbox-test-never-created] ";

    private static LinkState Link(string name, string? master = null, string? mac = null, params string[] ipv4) => new(name, true, master, ipv4, mac);

    /// <summary>The links Mesh makes for the sandbox, which carry no IPv6: the gateway bridge and both ends of both legs.</summary>
    private static readonly (NetworkNamespacePath Netns, string Link)[] Ipv6Off =
        [(Host, "mesh-gwbridge"), (Host, "mesh-sbx-gw"), (Host, "mesh-sbx-ing"), (Sandbox, "eth1"), (Sandbox, "eth0")];

    private static FakeLinks Converged(string sandboxIngress = "10.255.0.2/16")
    {
        var links = new FakeLinks();
        links.Links[Host] = new[]
        {
            Link("lo", null, null, "127.0.0.1/8"), Link("mesh-ov-ingress"), Link("mesh-gwbridge", null, null, "172.18.0.1/16"),
            Link("mesh-sbx-gw", "mesh-gwbridge"), Link("mesh-sbx-ing", "mesh-ov-ingress"),
        }.ToDictionary(l => l.Name);
        links.Links[Sandbox] = new[]
        {
            Link("lo", null, null, "127.0.0.1/8"), Link("eth1", null, null, "172.18.0.2/16"), Link("eth0", null, "02:42:0a:ff:00:02", sandboxIngress),
        }.ToDictionary(l => l.Name);
        links.Routes[(Sandbox, 254)] = [new RouteEntry("default", "172.18.0.1", "eth1")];
        links.Routes[(Host, 254)] = [new RouteEntry("10.255.0.0/16", "172.18.0.2", "mesh-gwbridge")];
        links.Sysctls[(Host, "net.ipv4.ip_forward")] = "1";
        links.Sysctls[(Host, "net.ipv4.conf.mesh-gwbridge.route_localnet")] = "1";
        links.Sysctls[(Sandbox, "net.ipv4.ip_forward")] = "1";
        foreach (var (netns, link) in Ipv6Off)
        {
            links.Sysctls[(netns, LinkIpv6.DisableKey(link))] = "1";
        }

        return links;
    }

    [Fact]
    public async Task A_converged_node_is_only_read()
    {
        var links = Converged();
        await new IngressSandbox(links, Options).EnsureAsync("10.255.0.2", CancellationToken.None);

        Assert.Equal(["ip netns add sandbox-test-never-created"], links.Writes); // the test's namespace file never exists
        Assert.Equal(9, links.Calls.Count); // host links, netns add, host IPv6, sandbox IPv6, host sysctls, sandbox links, route, sandbox sysctl, host routes
    }

    [Fact]
    public async Task A_fresh_node_gets_everything_and_what_differs_is_put_right()
    {
        var links = new FakeLinks();
        links.Links[Host] = new Dictionary<string, LinkState> { ["mesh-ov-ingress"] = Link("mesh-ov-ingress") };
        await new IngressSandbox(links, Options).EnsureAsync("10.255.0.2", CancellationToken.None);

        Assert.Contains("ip link add mesh-gwbridge type bridge", links.Writes);
        Assert.Contains("ip addr replace 172.18.0.1/16 dev mesh-gwbridge", links.Writes);
        Assert.Contains("sysctl -w net.ipv4.ip_forward=1", links.Writes);
        Assert.Contains("ip link add mesh-sbx-ing mtu 1450 type veth peer name eth0 address 02:42:0a:ff:00:02 mtu 1450 netns /var/run/netns/sandbox-test-never-created", links.Writes);
        Assert.Contains("ip link set mesh-sbx-ing master mesh-ov-ingress up", links.Writes);
        Assert.Contains(InSandbox + "ip addr replace 10.255.0.2/16 dev eth0", links.Writes);
        Assert.Contains(InSandbox + "ip route replace default via 172.18.0.1", links.Writes);
        Assert.Contains("ip route replace 10.255.0.0/16 via 172.18.0.2 dev mesh-gwbridge", links.Writes);

        // Only the sandbox's ingress address differs (the node got a new one): that address and the MAC that follows it are written.
        var moved = Converged();
        await new IngressSandbox(moved, Options).EnsureAsync("10.255.0.9", CancellationToken.None);
        Assert.Equal(
        [
            "ip netns add sandbox-test-never-created",
            InSandbox + "ip link set eth0 address 02:42:0a:ff:00:09",
            InSandbox + "ip addr replace 10.255.0.9/16 dev eth0",
        ], moved.Writes);
    }

    [Fact]
    public async Task The_links_made_for_the_sandbox_get_ipv6_off_before_they_are_up_and_a_value_changed_by_hand_is_put_back()
    {
        var links = new FakeLinks();
        links.Links[Host] = new Dictionary<string, LinkState> { ["mesh-ov-ingress"] = Link("mesh-ov-ingress") };
        await new IngressSandbox(links, Options).EnsureAsync("10.255.0.2", CancellationToken.None);

        foreach (var (netns, link) in Ipv6Off)
        {
            var prefix = netns == Sandbox ? InSandbox : "";
            var off = links.Writes.IndexOf($"{prefix}sysctl -w {LinkIpv6.DisableKey(link)}=1");
            Assert.True(off >= 0, $"IPv6 was never turned off on {link}");
            var up = links.Writes.FindIndex(w => w.StartsWith($"{prefix}ip link set {link} ", StringComparison.Ordinal) && w.EndsWith(" up", StringComparison.Ordinal));
            Assert.True(up > off, $"{link} was up (write {up}) before its IPv6 was off (write {off})");
        }

        // Someone turned it on again on the sandbox's ingress leg: the next pass turns it off, and writes nothing else.
        var drifted = Converged();
        drifted.Sysctls[(Sandbox, LinkIpv6.DisableKey("eth0"))] = "0";
        await new IngressSandbox(drifted, Options).EnsureAsync("10.255.0.2", CancellationToken.None);
        Assert.Equal(["ip netns add sandbox-test-never-created", InSandbox + "sysctl -w net.ipv6.conf.eth0.disable_ipv6=1"], drifted.Writes);
    }

    [Fact]
    public async Task Without_the_runtimes_ingress_bridge_it_says_so_and_builds_nothing()
    {
        var links = new FakeLinks();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new IngressSandbox(links, Options).EnsureAsync("10.255.0.2", CancellationToken.None));
        Assert.Contains("mesh-ov-ingress", e.Message, StringComparison.Ordinal);
        Assert.Empty(links.Writes);
    }
}
