using System.Net;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.Planning;

/// <summary>The ipvs dataplane's planning, without a kernel: desired IPVS services and marks from a cluster state, and the diff against a dump.</summary>
public class IpvsPlannerTests
{
    private static readonly IpvsOptions Options = new();
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(5);

    /// <summary>web publishes 8080 tcp+udp and joins appnet; api is dnsrr on appnet; db is vip on appnet, unpublished.</summary>
    private static ClusterState Cluster(int webTasks, int apiTasks = 0)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "web",
            Ports = [new PublishedPort(8080, 80, TransportProtocol.Tcp), new PublishedPort(8080, 80, TransportProtocol.Udp)],
            Networks = ["appnet"],
        }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Mode = ServiceMode.Dnsrr, Networks = ["appnet"] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "db", Networks = ["appnet"] }).State;
        for (var i = 1; i <= webTasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = $"web.{i}", Service = "web", Node = "n1" }).State;
        }

        for (var i = 1; i <= apiTasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = $"api.{i}", Service = "api", Node = "n1" }).State;
        }

        return state;
    }

    private static ClusterService Service(ClusterState state, string name) => state.Services.Single(s => s.Name == name);

    private static IReadOnlyList<string> IngressAddresses(ClusterState state, string service) =>
        state.Tasks.Where(t => t.Service == service).OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => t.Addresses[OverlayNetwork.IngressName]).ToArray();

    /// <summary>What the kernel would dump after applying <paramref name="changes"/> to <paramref name="before"/>.</summary>
    private static IReadOnlyList<IpvsActualService> Apply(IReadOnlyList<IpvsActualService> before, IEnumerable<IpvsChange> changes)
    {
        var services = before.ToDictionary(s => s.Service.Key, s => (s.Service, Dests: s.Destinations.ToList()));
        foreach (var c in changes)
        {
            var key = c.Service.Key;
            switch (c.Kind)
            {
                case IpvsChangeKind.NewService:
                    Assert.False(services.ContainsKey(key), $"EEXIST {c}");
                    services[key] = (c.Service, []);
                    break;
                case IpvsChangeKind.UpdateService:
                    services[key] = (c.Service, services[key].Dests);
                    break;
                case IpvsChangeKind.DeleteService:
                    Assert.True(services.Remove(key), $"ESRCH {c}");
                    break;
                case IpvsChangeKind.NewDestination:
                    Assert.DoesNotContain(services[key].Dests, d => d.EndPoint.Equals(c.Destination!.EndPoint));
                    services[key].Dests.Add(c.Destination!);
                    break;
                case IpvsChangeKind.UpdateDestination:
                    var i = services[key].Dests.FindIndex(d => d.EndPoint.Equals(c.Destination!.EndPoint));
                    Assert.True(i >= 0, $"ENOENT {c}");
                    services[key].Dests[i] = c.Destination!;
                    break;
                case IpvsChangeKind.DeleteDestination:
                    Assert.Equal(1, services[key].Dests.RemoveAll(d => d.EndPoint.Equals(c.Destination!.EndPoint)));
                    break;
            }
        }

        return services.Values.Select(s => new IpvsActualService(s.Service, s.Dests)).ToArray();
    }

    private static IReadOnlyList<IpvsChange> Plan(IReadOnlyList<IpvsDesiredService> desired, IReadOnlyList<IpvsActualService> actual, IpvsDrainTracker drains, double nowSeconds = 0, TimeSpan? drain = null) =>
        IpvsDiff.Plan(desired, actual, s => s.IsFirewallMark, drains, TimeSpan.FromSeconds(nowSeconds), drain ?? Drain);

    [Fact]
    public void The_sandbox_has_one_fwmark_service_per_published_service_with_the_task_ingress_addresses_as_masq_real_servers()
    {
        var state = Cluster(3);
        var services = IpvsSandboxRules.Services(state, Options);
        var web = Assert.Single(services);
        Assert.Equal("web", web.Name);
        Assert.True(web.Service.IsFirewallMark);
        Assert.Equal((uint)Service(state, "web").FirewallMark, web.Service.FirewallMark);
        Assert.Equal("rr", web.Service.Scheduler);
        Assert.Equal(IngressAddresses(state, "web"), web.Destinations.Select(d => d.Address.ToString()));
        Assert.All(web.Destinations, d =>
        {
            Assert.Equal(ForwardingMethod.Masquerade, d.ForwardingMethod);
            Assert.Equal(0, d.Port);
            Assert.Equal(1, d.Weight);
        });
    }

    [Fact]
    public void The_sandbox_rules_are_in_iptables_save_canonical_form()
    {
        var state = Cluster(1);
        var web = Service(state, "web");
        var rules = IpvsSandboxRules.Rules(state, "10.255.0.2");
        var mark = $"0x{web.FirewallMark:x}/0xffffffff";
        Assert.Equal(
            [$"-p tcp -m tcp --dport 8080 -j MARK --set-xmark {mark}", $"-p udp -m udp --dport 8080 -j MARK --set-xmark {mark}"],
            rules.Chains.Single(c => c is { Table: "mangle", Name: IpvsSandboxRules.MarkPorts }).Rules);
        Assert.Equal([$"-d {web.Vips["ingress"]}/32 -j MARK --set-xmark {mark}"], rules.Chains.Single(c => c.Name == IpvsSandboxRules.MarkVips).Rules);
        Assert.Equal(["-m mark --mark 0x1000000/0x1000000 -j RETURN", "-d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source 10.255.0.2"], rules.Chains.Single(c => c is { Table: "nat" }).Rules);
        Assert.Contains(new IptablesJump("mangle", "PREROUTING", "-j MESH-INGRESS"), rules.Jumps);
        Assert.Contains(new IptablesJump("nat", "POSTROUTING", "-j MESH-POSTROUTING"), rules.Jumps);
    }

    [Fact]
    public void Mark_format_matches_iptables_save()
    {
        Assert.Equal("0x100/0xffffffff", IpvsSandboxRules.Mark(0x100));
        Assert.Equal("0x1000101/0xffffffff", IpvsSandboxRules.Mark(0x1000101));
    }

    [Fact]
    public void After_the_rules_are_applied_the_planner_sees_nothing_to_do()
    {
        var rules = IpvsSandboxRules.Rules(Cluster(2), "10.255.0.2");
        Assert.NotNull(IptablesPlanner.Plan(rules, IptablesSave.Parse("*mangle\nCOMMIT\n*nat\nCOMMIT\n")));
        Assert.Null(IptablesPlanner.Plan(rules, IptablesSave.Parse(Save(rules))));
    }

    /// <summary>The ruleset as iptables-save would print it.</summary>
    private static string Save(IptablesRuleset rules)
    {
        var text = new StringBuilder();
        foreach (var table in rules.Tables)
        {
            text.Append('*').Append(table).Append('\n');
            foreach (var chain in rules.Chains.Where(c => c.Table == table))
            {
                text.Append(':').Append(chain.Name).Append(" - [0:0]\n");
            }

            foreach (var jump in rules.Jumps.Where(j => j.Table == table))
            {
                text.Append("-A ").Append(jump.Chain).Append(' ').Append(jump.Rule).Append('\n');
            }

            foreach (var chain in rules.Chains.Where(c => c.Table == table))
            {
                foreach (var rule in chain.Rules)
                {
                    text.Append("-A ").Append(chain.Name).Append(' ').Append(rule).Append('\n');
                }
            }

            text.Append("COMMIT\n");
        }

        return text.ToString();
    }

    [Fact]
    public void An_empty_kernel_gets_each_service_before_its_real_servers_in_one_batch()
    {
        var desired = IpvsSandboxRules.Services(Cluster(3), Options);
        var changes = Plan(desired, [], new IpvsDrainTracker());
        Assert.Equal(
            [IpvsChangeKind.NewService, IpvsChangeKind.NewDestination, IpvsChangeKind.NewDestination, IpvsChangeKind.NewDestination],
            changes.Select(c => c.Kind));
        Assert.Equal(4, IpvsDiff.ToBatch(changes).Count);
    }

    [Fact]
    public void A_converged_kernel_needs_no_change_and_stats_or_counters_do_not_count()
    {
        var desired = IpvsSandboxRules.Services(Cluster(3), Options);
        var drains = new IpvsDrainTracker();
        var kernel = Apply([], Plan(desired, [], drains));
        kernel = kernel.Select(s => new IpvsActualService(
            s.Service with { Stats = IpvsStats.Zero with { Connections = 9 } },
            s.Destinations.Select(d => d with { ActiveConnections = 7, InactiveConnections = 2 }).ToArray())).ToArray();
        Assert.Empty(Plan(desired, kernel, drains));
    }

    [Fact]
    public void A_gone_task_is_drained_at_weight_zero_then_removed_after_the_drain_period()
    {
        var drains = new IpvsDrainTracker();
        var kernel = Apply([], Plan(IpvsSandboxRules.Services(Cluster(3), Options), [], drains));
        var gone = IPAddress.Parse(IngressAddresses(Cluster(3), "web")[2]);
        var after = IpvsSandboxRules.Services(StateTransitions.RemoveTask(Cluster(3), "web.3"), Options);

        var first = Plan(after, kernel, drains, nowSeconds: 10);
        var drain = Assert.Single(first);
        Assert.Equal(IpvsChangeKind.UpdateDestination, drain.Kind);
        Assert.Equal(gone, drain.Destination!.Address);
        Assert.Equal(0, drain.Destination.Weight);
        kernel = Apply(kernel, first);

        Assert.Empty(Plan(after, kernel, drains, nowSeconds: 12));

        var later = Plan(after, kernel, drains, nowSeconds: 15);
        var remove = Assert.Single(later);
        Assert.Equal(IpvsChangeKind.DeleteDestination, remove.Kind);
        Assert.Equal(gone, remove.Destination!.Address);
        kernel = Apply(kernel, later);
        Assert.Equal(2, kernel.Single().Destinations.Count);
        Assert.Empty(Plan(after, kernel, drains, nowSeconds: 20));
    }

    [Fact]
    public void Without_a_drain_period_a_gone_task_is_removed_at_once()
    {
        var drains = new IpvsDrainTracker();
        var kernel = Apply([], Plan(IpvsSandboxRules.Services(Cluster(3), Options), [], drains));
        var changes = Plan(IpvsSandboxRules.Services(StateTransitions.RemoveTask(Cluster(3), "web.3"), Options), kernel, drains, drain: TimeSpan.Zero);
        Assert.Equal(IpvsChangeKind.DeleteDestination, Assert.Single(changes).Kind);
    }

    [Fact]
    public void A_drained_server_found_after_a_restart_gets_a_fresh_drain_period()
    {
        var kernel = Apply([], Plan(IpvsSandboxRules.Services(Cluster(3), Options), [], new IpvsDrainTracker()));
        var after = IpvsSandboxRules.Services(StateTransitions.RemoveTask(Cluster(3), "web.3"), Options);
        kernel = Apply(kernel, Plan(after, kernel, new IpvsDrainTracker(), 0));

        var restarted = new IpvsDrainTracker();
        Assert.Empty(Plan(after, kernel, restarted, nowSeconds: 100));
        Assert.Empty(Plan(after, kernel, restarted, nowSeconds: 104));
        Assert.Equal(IpvsChangeKind.DeleteDestination, Assert.Single(Plan(after, kernel, restarted, nowSeconds: 105)).Kind);
    }

    [Fact]
    public void A_draining_server_whose_task_comes_back_gets_its_weight_back()
    {
        var drains = new IpvsDrainTracker();
        var desired = IpvsSandboxRules.Services(Cluster(3), Options);
        var kernel = Apply([], Plan(desired, [], drains));
        kernel = Apply(kernel, Plan(IpvsSandboxRules.Services(StateTransitions.RemoveTask(Cluster(3), "web.3"), Options), kernel, drains, 1));
        var back = Assert.Single(Plan(desired, kernel, drains, 2));
        Assert.Equal(IpvsChangeKind.UpdateDestination, back.Kind);
        Assert.Equal(1, back.Destination!.Weight);
        Assert.Equal(0, drains.Count);
    }

    [Fact]
    public void A_removed_service_is_deleted_whole_and_services_mesh_does_not_own_are_left_alone()
    {
        var drains = new IpvsDrainTracker();
        var kernel = Apply([], Plan(IpvsSandboxRules.Services(Cluster(2), Options), [], drains));
        var foreign = new IpvsActualService(IpvsService.Tcp(IPAddress.Parse("10.9.9.9"), 80), []);
        var changes = Plan(IpvsSandboxRules.Services(StateTransitions.RemoveService(Cluster(2), "web"), Options), [.. kernel, foreign], drains);
        var delete = Assert.Single(changes);
        Assert.Equal(IpvsChangeKind.DeleteService, delete.Kind);
        Assert.True(delete.Service.IsFirewallMark);
    }

    [Fact]
    public void A_changed_scheduler_updates_the_service_in_place()
    {
        var drains = new IpvsDrainTracker();
        var kernel = Apply([], Plan(IpvsSandboxRules.Services(Cluster(2), Options), [], drains));
        var changes = Plan(IpvsSandboxRules.Services(Cluster(2), Options with { Scheduler = "wrr" }), kernel, drains);
        var update = Assert.Single(changes);
        Assert.Equal(IpvsChangeKind.UpdateService, update.Kind);
        Assert.Equal("wrr", update.Service.Scheduler);
    }

    [Fact]
    public void A_task_reaches_every_vip_service_on_its_networks_with_that_networks_task_addresses()
    {
        var state = Cluster(2, apiTasks: 1);
        var api = state.Tasks.Single(t => t.Name == "api.1");
        var services = IpvsTaskRules.Services(state, api, Options);

        // db and web have VIPs on appnet; api is dnsrr (no VIP); the ingress network is never load-balanced here.
        Assert.Equal(["db@appnet", "web@appnet"], services.Select(s => s.Service.Name));
        var web = services.Single(s => s.Service.Name == "web@appnet");
        Assert.Equal(Service(state, "web").Vips["appnet"], web.Vip);
        Assert.Equal((uint)Service(state, "web").FirewallMark, web.Service.Service.FirewallMark);
        Assert.Equal(
            state.Tasks.Where(t => t.Service == "web").OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => t.Addresses["appnet"]),
            web.Service.Destinations.Select(d => d.Address.ToString()));
        Assert.Empty(services.Single(s => s.Service.Name == "db@appnet").Service.Destinations);

        var rules = IpvsTaskRules.Rules(services);
        var chain = Assert.Single(rules.Chains);
        Assert.Equal("mangle", chain.Table);
        Assert.Contains($"-d {web.Vip}/32 -j MARK --set-xmark 0x{Service(state, "web").FirewallMark:x}/0xffffffff", chain.Rules);
        Assert.Equal(new IptablesJump("mangle", "OUTPUT", "-j MESH-VIP-OUTPUT"), Assert.Single(rules.Jumps));
    }

    [Fact]
    public void A_task_on_two_networks_gets_distinct_marks_per_network()
    {
        var state = Cluster(1);
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "backnet", Subnet = "10.0.2.0/24", Vni = 4098 }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "both", Networks = ["appnet", "backnet"] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "both.1", Service = "both", Node = "n1" }).State;
        var services = IpvsTaskRules.Services(state, state.Tasks.Single(t => t.Name == "both.1"), Options);
        var marks = services.Select(s => s.Service.Service.FirewallMark).ToList();
        Assert.Equal(marks.Count, marks.Distinct().Count());
        var mark = (uint)Service(state, "both").FirewallMark;
        Assert.Contains(mark, marks);
        Assert.Contains(mark | (1u << IpvsTaskRules.NetworkShift), marks);
    }

    [Fact]
    public void A_task_without_vip_services_on_its_networks_needs_nothing()
    {
        var state = Cluster(1);
        var web = state.Tasks.Single() with { Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.9" } };
        var services = IpvsTaskRules.Services(state, web, Options);
        Assert.Empty(services);
        Assert.Same(IptablesRuleset.Empty, IpvsTaskRules.Rules(services));
    }

    [Fact]
    public void Timeouts_are_set_only_when_configured_and_zero_leaves_a_field_unchanged()
    {
        Assert.Null(new IpvsOptions().Timeouts);
        Assert.Equal(new IpvsTimeouts(7200, 0, 0), new IpvsOptions { TcpTimeout = TimeSpan.FromHours(2) }.Timeouts);
        Assert.Equal(new IpvsTimeouts(0, 30, 60), new IpvsOptions { TcpFinTimeout = TimeSpan.FromSeconds(30), UdpTimeout = TimeSpan.FromMinutes(1) }.Timeouts);
    }

    [Theory]
    [InlineData(DataplaneChoice.Auto, true, DataplaneChoice.Ipvs)]
    [InlineData(DataplaneChoice.Auto, false, DataplaneChoice.Nftables)]
    [InlineData(DataplaneChoice.Ipvs, true, DataplaneChoice.Ipvs)]
    [InlineData(DataplaneChoice.Nftables, true, DataplaneChoice.Nftables)]
    public void Auto_picks_ipvs_where_the_family_resolves(DataplaneChoice requested, bool ipvs, DataplaneChoice expected)
    {
        var (choice, reason) = DataplaneSelector.Resolve(requested, ipvs);
        Assert.Equal(expected, choice);
        Assert.False(string.IsNullOrEmpty(reason));
    }
}
