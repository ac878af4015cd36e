using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// The planned rules for <c>mode=host</c> and <c>traffic=local</c> on both dataplanes: host mode only on nodes with a task,
/// DNATed straight to them; local traffic to the node's own tasks, and never SNATed; the plain mesh as before.
/// </summary>
public class ClientAddressRulesTests
{
    private static readonly NodeNetworkOptions Options = new();

    /// <summary>n1 runs hostweb.1, hostweb.2, localweb.1 and web.1; n2 runs localweb.2; n3 runs nothing.</summary>
    private static (ClusterState State, Dictionary<string, string> Ip) Cluster()
    {
        var state = ClusterState.Empty;
        foreach (var (node, i) in new[] { "n1", "n2", "n3" }.Select((n, i) => (n, i)))
        {
            state = StateTransitions.RegisterNode(state, new NodeSpec { Name = node, AdvertiseAddress = $"198.18.0.1{i + 1}" }).State;
        }

        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [PublishedPort.Parse("8080:80")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "hostweb", Ports = [PublishedPort.Parse("8091:80,mode=host"), PublishedPort.Parse("8091:81/udp,mode=host")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "localweb", Ports = [PublishedPort.Parse("8092:80,traffic=local"), PublishedPort.Parse("8093:80")] }).State;
        foreach (var (task, node) in new[] { ("hostweb.1", "n1"), ("hostweb.2", "n1"), ("localweb.1", "n1"), ("localweb.2", "n2"), ("web.1", "n1") })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = task, Service = task.Split('.')[0], Node = node }).State;
        }

        return (state, state.Tasks.ToDictionary(t => t.Name, t => t.Addresses[OverlayNetwork.IngressName]));
    }

    private static IReadOnlyList<string> Chain(IptablesRuleset rules, string table, string chain) =>
        rules.Chains.Single(c => c.Table == table && c.Name == chain).Rules;

    [Fact]
    public void Host_mode_is_dnated_on_the_node_straight_to_its_own_tasks_spread_by_nth_and_forwarded_by_original_port()
    {
        var (state, ip) = Cluster();
        var n1 = HostRules.Build(state, Options, "n1");
        var dnat = Chain(n1, "nat", HostRules.Ingress);
        Assert.Equal(
            [
                $"-p tcp -m tcp --dport 8091 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination {ip["hostweb.1"]}:80",
                $"-p tcp -m tcp --dport 8091 -j DNAT --to-destination {ip["hostweb.2"]}:80",
                $"-p udp -m udp --dport 8091 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination {ip["hostweb.1"]}:81",
                $"-p udp -m udp --dport 8091 -j DNAT --to-destination {ip["hostweb.2"]}:81",
            ],
            dnat.Where(r => r.Contains("8091", StringComparison.Ordinal)));
        Assert.DoesNotContain(dnat, r => r.Contains("8091 -j DNAT --to-destination 172.18.0.2", StringComparison.Ordinal)); // never through the sandbox's mesh
        Assert.Contains("-p tcp -m conntrack --ctstate DNAT --ctorigdstport 8091 -j ACCEPT", Chain(n1, "filter", HostRules.Ingress));

        // The local-traffic and plain ports still go to the sandbox on every node; host mode exists only where a task runs.
        foreach (var node in new[] { "n2", "n3" })
        {
            var rules = HostRules.Build(state, Options, node);
            Assert.DoesNotContain(rules.Chains.SelectMany(c => c.Rules), r => r.Contains("8091", StringComparison.Ordinal));
            Assert.Contains("-p tcp -m tcp --dport 8092 -j DNAT --to-destination 172.18.0.2:8092", Chain(rules, "nat", HostRules.Ingress));
            Assert.Contains("-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", Chain(rules, "nat", HostRules.Ingress));
        }
    }

    [Fact]
    public void Nftables_local_traffic_goes_to_the_nodes_own_tasks_marked_not_to_be_snated_and_a_node_without_any_has_no_rule()
    {
        var (state, ip) = Cluster();
        var n1 = IngressSandboxTable.Build(state, "10.255.0.2", "n1");
        Assert.Contains("fib daddr type local", n1.Skeleton, StringComparison.Ordinal); // a host-mode packet routed through is not the mesh's
        Assert.Contains($"meta mark & {IngressSandboxTable.LocalTrafficMark} != 0 return", n1.Skeleton, StringComparison.Ordinal);
        Assert.True(n1.Skeleton.IndexOf("return", StringComparison.Ordinal) < n1.Skeleton.IndexOf("snat to", StringComparison.Ordinal));

        var published = n1.Maps.Single(m => m.Name == "published-ports").Elements.Select(e => e.Text).ToList();
        Assert.DoesNotContain(published, e => e.Contains("8091", StringComparison.Ordinal));
        Assert.Contains(published, e => e.StartsWith("tcp . 8092 :", StringComparison.Ordinal));

        Assert.Equal(
            [
                $"tcp . 8092 : goto pick-rr-local-1 {{ 0 : {ip["localweb.1"]} . 80 }}",
                $"tcp . 8093 : goto pick-rr-2 {{ 0 : {ip["localweb.1"]} . 80, 1 : {ip["localweb.2"]} . 80 }}",
            ],
            new[] { "tcp . 8092", "tcp . 8093" }.Select(p => SandboxTableText.Port(n1, p)));
        Assert.Equal(
            $"meta mark set meta mark | {IngressSandboxTable.LocalTrafficMark} dnat ip addr . port to meta l4proto . th dport . numgen inc mod 1 map @backends",
            SandboxTableText.Chain(n1, "pick-rr-local-1"));
        Assert.Equal("dnat ip addr . port to meta l4proto . th dport . numgen inc mod 2 map @backends", SandboxTableText.Chain(n1, "pick-rr-2"));
        Assert.Equal($"tcp . 8092 : goto pick-rr-local-1 {{ 0 : {ip["localweb.2"]} . 80 }}", SandboxTableText.Port(IngressSandboxTable.Build(state, "10.255.0.3", "n2"), "tcp . 8092"));

        // n3 runs no task: 8092 is left alone (delivered to the sandbox, where nothing listens: refused); 8093 still meshes.
        var n3 = IngressSandboxTable.Build(state, "10.255.0.4", "n3");
        Assert.Null(SandboxTableText.Port(n3, "tcp . 8092"));
        Assert.StartsWith("tcp . 8093 : goto pick-rr-2 {", SandboxTableText.Port(n3, "tcp . 8093"), StringComparison.Ordinal);
        Assert.DoesNotContain(n3.Chains, c => c.Name == "pick-rr-local-1");
    }

    [Fact]
    public void Ipvs_local_traffic_has_its_own_fwmark_service_of_the_nodes_tasks_and_its_mark_skips_the_snat()
    {
        var (state, ip) = Cluster();
        var localweb = state.Services.Single(s => s.Name == "localweb");
        var localMark = (uint)localweb.FirewallMark | IpvsSandboxRules.LocalTrafficMark;
        var rules = IpvsSandboxRules.Rules(state, "10.255.0.2");
        Assert.Contains($"-p tcp -m tcp --dport 8092 -j MARK --set-xmark {IpvsSandboxRules.Mark(localMark)}", Chain(rules, "mangle", IpvsSandboxRules.MarkPorts));
        Assert.Contains($"-p tcp -m tcp --dport 8093 -j MARK --set-xmark {IpvsSandboxRules.Mark((uint)localweb.FirewallMark)}", Chain(rules, "mangle", IpvsSandboxRules.MarkPorts));
        Assert.DoesNotContain(Chain(rules, "mangle", IpvsSandboxRules.MarkPorts), r => r.Contains("8091", StringComparison.Ordinal));
        Assert.Equal("-m mark --mark 0x1000000/0x1000000 -j RETURN", Chain(rules, "nat", IpvsSandboxRules.SourceNat)[0]);

        var n1 = IpvsSandboxRules.Services(state, new IpvsOptions(), "n1");
        var local = n1.Single(s => s.Name == "localweb/local");
        Assert.Equal(localMark, local.Service.FirewallMark);
        Assert.Equal([ip["localweb.1"]], local.Destinations.Select(d => d.Address.ToString()));
        Assert.Equal(2, n1.Single(s => s.Name == "localweb").Destinations.Count);
        Assert.Empty(IpvsSandboxRules.Services(state, new IpvsOptions(), "n3").Single(s => s.Name == "localweb/local").Destinations);
        Assert.DoesNotContain(n1, s => s.Name.StartsWith("hostweb", StringComparison.Ordinal));
    }

    [Fact]
    public void Tasks_of_services_that_keep_the_client_address_get_reply_routes_and_others_do_not()
    {
        var (state, _) = Cluster();
        Assert.True(ClientReplyRoutes.Needed(state.Services.Single(s => s.Name == "hostweb")));
        Assert.True(ClientReplyRoutes.Needed(state.Services.Single(s => s.Name == "localweb")));
        Assert.False(ClientReplyRoutes.Needed(state.Services.Single(s => s.Name == "web")));
    }
}
