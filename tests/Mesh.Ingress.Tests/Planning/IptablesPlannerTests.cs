using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Tests.Planning;

public class IptablesPlannerTests
{
    private static readonly NodeNetworkOptions Options = new();

    private static ClusterState Web() =>
        StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80), new PublishedPort(8080, 80, TransportProtocol.Udp)] }).State;

    /// <summary>What iptables-save prints after the plan was applied to an empty namespace (forms verified against iptables 1.8.9).</summary>
    private const string AppliedHostRules = """
        *filter
        :INPUT ACCEPT [0:0]
        :FORWARD ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :MESH-INGRESS - [0:0]
        -A FORWARD -j MESH-INGRESS
        -A MESH-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT
        -A MESH-INGRESS -p tcp -m tcp --sport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A MESH-INGRESS -p udp -m udp --dport 8080 -j ACCEPT
        -A MESH-INGRESS -p udp -m udp --sport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A MESH-INGRESS -i mesh-gwbridge ! -o mesh-gwbridge -j ACCEPT
        -A MESH-INGRESS -o mesh-gwbridge -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A MESH-INGRESS -j RETURN
        COMMIT
        *nat
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :OUTPUT ACCEPT [0:0]
        :POSTROUTING ACCEPT [0:0]
        :DOCKER - [0:0]
        :MESH-INGRESS - [0:0]
        :MESH-POSTROUTING - [0:0]
        -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
        -A PREROUTING -m addrtype --dst-type LOCAL -j MESH-INGRESS
        -A OUTPUT -m addrtype --dst-type LOCAL -j MESH-INGRESS
        -A POSTROUTING -j MESH-POSTROUTING
        -A DOCKER -j RETURN
        -A MESH-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080
        -A MESH-INGRESS -p udp -m udp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080
        -A MESH-INGRESS -j RETURN
        -A MESH-POSTROUTING -o mesh-gwbridge -m addrtype --src-type LOCAL -j MASQUERADE
        -A MESH-POSTROUTING -s 172.18.0.0/16 ! -o mesh-gwbridge -j MASQUERADE
        COMMIT
        """;

    [Fact]
    public void An_empty_namespace_gets_chains_and_jumps_in_one_script_per_table()
    {
        var script = IptablesPlanner.Plan(HostRules.Build(Web(), Options), IptablesSave.Parse(""));
        Assert.NotNull(script);
        Assert.Contains("*nat\n:MESH-INGRESS - [0:0]\n:MESH-POSTROUTING - [0:0]\n", script, StringComparison.Ordinal);
        Assert.Contains("-A MESH-INGRESS -p udp -m udp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080\n", script, StringComparison.Ordinal);
        Assert.Contains("-I PREROUTING 1 -m addrtype --dst-type LOCAL -j MESH-INGRESS\n", script, StringComparison.Ordinal);
        Assert.Contains("-I FORWARD 1 -j MESH-INGRESS\n", script, StringComparison.Ordinal);
        Assert.Equal(2, script.Split("COMMIT\n").Length - 1);
    }

    [Fact]
    public void A_namespace_that_already_matches_needs_no_transaction()
    {
        Assert.Null(IptablesPlanner.Plan(HostRules.Build(Web(), Options), IptablesSave.Parse(AppliedHostRules)));
    }

    [Fact]
    public void What_a_transaction_leaves_behind_plans_no_further_change_and_equals_what_iptables_save_shows()
    {
        var desired = HostRules.Build(Web(), Options);
        Assert.Null(IptablesPlanner.Plan(desired, IptablesSave.Of(desired)));
        var saved = IptablesSave.Parse(AppliedHostRules);
        var written = IptablesSave.Of(desired);
        Assert.Equal(saved.OwnedChains.OrderBy(k => k.Key.ToString()).Select(k => (k.Key, string.Join('|', k.Value))),
            written.OwnedChains.OrderBy(k => k.Key.ToString()).Select(k => (k.Key, string.Join('|', k.Value))));
        Assert.Equal(saved.Jumps.Select(j => j.ToString()).Order(StringComparer.Ordinal), written.Jumps.Select(j => j.ToString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Only_the_changed_chain_is_rewritten_and_foreign_chains_are_never_named()
    {
        var more = StateTransitions.CreateService(Web(), new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State;
        var script = IptablesPlanner.Plan(HostRules.Build(more, Options), IptablesSave.Parse(AppliedHostRules))!;

        Assert.Contains(":MESH-INGRESS - [0:0]", script, StringComparison.Ordinal);
        Assert.DoesNotContain("MESH-POSTROUTING", script, StringComparison.Ordinal);
        Assert.DoesNotContain("DOCKER", script, StringComparison.Ordinal);
        Assert.DoesNotContain("-I ", script, StringComparison.Ordinal);
        Assert.Contains("--dport 9090 -j DNAT --to-destination 172.18.0.2:9090", script, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_jumps_left_by_a_crash_are_removed_and_stale_mesh_chains_deleted()
    {
        var messy = AppliedHostRules
            .Replace("-A POSTROUTING -j MESH-POSTROUTING\n", "-A POSTROUTING -j MESH-POSTROUTING\n-A POSTROUTING -j MESH-POSTROUTING\n-A POSTROUTING -j MESH-OLD\n", StringComparison.Ordinal)
            .Replace(":MESH-POSTROUTING - [0:0]\n", ":MESH-POSTROUTING - [0:0]\n:MESH-OLD - [0:0]\n-A MESH-OLD -j RETURN\n", StringComparison.Ordinal);
        var script = IptablesPlanner.Plan(HostRules.Build(Web(), Options), IptablesSave.Parse(messy))!;

        Assert.Equal(
            "*nat\n:MESH-OLD - [0:0]\n-D POSTROUTING -j MESH-POSTROUTING\n-D POSTROUTING -j MESH-OLD\n-X MESH-OLD\nCOMMIT\n",
            script);
    }

    [Fact]
    public void Task_rules_redirect_published_to_target_and_accept_only_targets_on_the_ingress_address()
    {
        var state = Web();
        var task = new ServiceTask { Name = "web.1", Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.5" } };
        var rules = TaskRules.Build(task, state.Services[0]);

        var nat = rules.Chains.Single(c => c.Table == "nat");
        Assert.Equal(
            ["-d 10.255.0.5/32 -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 80", "-d 10.255.0.5/32 -p udp -m udp --dport 8080 -j REDIRECT --to-ports 80"],
            nat.Rules);
        var input = rules.Chains.Single(c => c.Table == "filter");
        Assert.Equal("-d 10.255.0.5/32 -j DROP", input.Rules[^1]);
        Assert.Equal(IptablesRuleset.Empty, TaskRules.Build(task with { Addresses = new Dictionary<string, string>() }, state.Services[0]));
    }

    /// <summary>The L7 entry connects from the sandbox straight to a route's target: accepted, with no REDIRECT of its own.</summary>
    [Fact]
    public void A_route_target_is_accepted_on_the_tasks_ingress_leg_with_or_without_published_ports()
    {
        var task = new ServiceTask { Name = "shop.1", Service = "shop", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.9" } };
        var routeOnly = new ClusterService { Name = "shop", FirewallMark = 0x101, Routes = [ServiceRoute.Parse("shop.test/=80"), ServiceRoute.Parse("shop.test/api=8080")] };
        var rules = TaskRules.Build(task, routeOnly);
        Assert.Empty(rules.Chains.Single(c => c.Table == "nat").Rules);
        Assert.Equal(
            ["-d 10.255.0.9/32 -p tcp -m tcp --dport 80 -j ACCEPT", "-d 10.255.0.9/32 -p tcp -m tcp --dport 8080 -j ACCEPT",
             "-d 10.255.0.9/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-d 10.255.0.9/32 -j DROP"],
            rules.Chains.Single(c => c.Table == "filter").Rules);

        var both = TaskRules.Build(task, routeOnly with { Ports = [new PublishedPort(8081, 80)] }).Chains.Single(c => c.Table == "filter").Rules;
        Assert.Single(both, r => r.Contains("--dport 80 ", StringComparison.Ordinal));
    }

    [Fact]
    public void The_empty_ruleset_removes_everything_mesh_put_in_a_namespace()
    {
        var script = IptablesPlanner.Plan(IptablesRuleset.Empty, IptablesSave.Parse(AppliedHostRules))!;
        Assert.Contains("-D PREROUTING -m addrtype --dst-type LOCAL -j MESH-INGRESS\n", script, StringComparison.Ordinal);
        Assert.Contains("-X MESH-INGRESS\n", script, StringComparison.Ordinal);
        Assert.DoesNotContain("DOCKER", script, StringComparison.Ordinal);
    }
}
