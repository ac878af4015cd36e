using System.Collections.Frozen;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Mesh.Ingress.Http;
using Mesh.Ingress.Tests.Dataplane;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.HealthChecks;

/// <summary>What a node's health verdicts do to each planner: nft backends, IPVS weights, YARP destinations, host mode.</summary>
public sealed class BackendHealthPlanningTests
{
    private static readonly HealthCheck Check = new() { Path = "/healthz", IntervalMs = 1000, TimeoutMs = 500 };

    /// <summary>shop (checked) with 3 tasks on n1, n1, n2; web (no check) with one on n1.</summary>
    private static ClusterState State()
    {
        var state = ClusterState.Empty;
        foreach (var (node, ip) in new[] { ("n1", "198.18.0.11"), ("n2", "198.18.0.12") })
        {
            state = StateTransitions.RegisterNode(state, new NodeSpec { Name = node, AdvertiseAddress = ip }).State;
        }

        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "shop",
            Ports = [new PublishedPort(8080, 80), PublishedPort.Parse("8081:80,traffic=local"), PublishedPort.Parse("8082:80,mode=host")],
            Routes = [ServiceRoute.Parse("shop.test/=80")],
            HealthCheck = Check,
        }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [new PublishedPort(9090, 80)] }).State;
        foreach (var (service, node) in new[] { ("shop", "n1"), ("shop", "n1"), ("shop", "n2"), ("web", "n1") })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = service, Node = node }).State;
        }

        return state;
    }

    private static BackendHealth Unhealthy(params string[] tasks) => new(tasks.ToFrozenSet(StringComparer.Ordinal));

    private static string Ip(ClusterState state, string task) => state.Tasks.Single(t => t.Name == task).Addresses[OverlayNetwork.IngressName];

    [Fact]
    public void An_unhealthy_task_leaves_the_backends_and_the_rest_stay_in_order()
    {
        var state = State();
        var shop = state.Services.Single(s => s.Name == "shop");
        var tasks = BackendSet.RunningTasksByService(state);
        var set = BackendSet.For(tasks, shop, OverlayNetwork.IngressName, Unhealthy("shop.2"));
        Assert.Equal([Ip(state, "shop.1"), Ip(state, "shop.3")], set.Addresses);
        Assert.Equal([Ip(state, "shop.2")], set.Unhealthy);
        Assert.False(set.FailOpen);

        // Without verdicts, or for a service without a check, nothing changes.
        Assert.Equal(3, BackendSet.For(tasks, shop, OverlayNetwork.IngressName).Addresses.Count);
        var web = state.Services.Single(s => s.Name == "web");
        Assert.Equal([Ip(state, "web.1")], BackendSet.For(tasks, web, OverlayNetwork.IngressName, Unhealthy("web.1")).Addresses);
    }

    [Fact]
    public void When_every_task_is_unhealthy_all_are_backends_and_the_set_says_it_fails_open()
    {
        var state = State();
        var shop = state.Services.Single(s => s.Name == "shop");
        var tasks = BackendSet.RunningTasksByService(state);
        var set = BackendSet.For(tasks, shop, OverlayNetwork.IngressName, Unhealthy("shop.1", "shop.2", "shop.3"));
        Assert.True(set.FailOpen);
        Assert.Equal(3, set.Addresses.Count);
        Assert.Empty(set.Unhealthy);

        // traffic=local fails open within the node's own tasks: n2's only task is unhealthy, so it stays.
        var local = BackendSet.ForNode(tasks, shop, OverlayNetwork.IngressName, "n2", Unhealthy("shop.3"));
        Assert.True(local.FailOpen);
        Assert.Equal([Ip(state, "shop.3")], local.Addresses);
    }

    [Fact]
    public void The_nft_sandbox_table_leaves_the_unhealthy_task_out_of_the_published_ports_map()
    {
        var state = State();
        var table = IngressSandboxTable.Build(state, "10.255.0.2", "n1", Unhealthy("shop.2"));
        var all = string.Join("\n", SandboxTableText.Ports(table));
        Assert.DoesNotContain(Ip(state, "shop.2") + " ", all, StringComparison.Ordinal);
        Assert.StartsWith("tcp . 8080 : goto pick-rr-2 {", SandboxTableText.Port(table, "tcp . 8080"), StringComparison.Ordinal);
        Assert.StartsWith("tcp . 8081 : goto pick-rr-local-1 {", SandboxTableText.Port(table, "tcp . 8081"), StringComparison.Ordinal);

        var failOpen = IngressSandboxTable.Build(state, "10.255.0.2", "n1", Unhealthy("shop.1", "shop.2", "shop.3"));
        Assert.StartsWith("tcp . 8080 : goto pick-rr-3 {", SandboxTableText.Port(failOpen, "tcp . 8080"), StringComparison.Ordinal);
    }

    [Fact]
    public void Ipvs_keeps_the_unhealthy_task_at_weight_zero_and_the_others_at_one()
    {
        var state = State();
        var services = IpvsSandboxRules.Services(state, new IpvsOptions(), "n1", Unhealthy("shop.2"));
        var shop = services.Single(s => s.Name == "shop");
        var weights = shop.Destinations.ToDictionary(d => d.Address.ToString(), d => d.Weight);
        Assert.Equal(3, weights.Count);
        Assert.Equal(0, weights[Ip(state, "shop.2")]);
        Assert.Equal(1, weights[Ip(state, "shop.1")]);
        Assert.Equal(1, weights[Ip(state, "shop.3")]);

        // The diff turns a healthy server into a weight-0 one in place (no removal, no drain timer), and back.
        var before = IpvsSandboxRules.Services(state, new IpvsOptions(), "n1").Single(s => s.Name == "shop");
        var drains = new IpvsDrainTracker();
        var changes = IpvsDiff.Plan([shop], [new IpvsActualService(before.Service, before.Destinations)], _ => true, drains, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        var change = Assert.Single(changes);
        Assert.Equal(IpvsChangeKind.UpdateDestination, change.Kind);
        Assert.Equal(0, change.Destination!.Weight);
        Assert.Equal(0, drains.Count);
    }

    [Fact]
    public void Yarp_loses_the_unhealthy_destination_keeps_all_when_none_is_healthy_and_has_passive_health()
    {
        var state = State();
        var cluster = HttpRouteTable.Build(state, Unhealthy("shop.2")).Clusters.Single(c => c.ClusterId == "shop:80");
        Assert.Equal(["shop.1", "shop.3"], cluster.Destinations!.Keys.Order());
        Assert.True(cluster.HealthCheck?.Passive?.Enabled);
        Assert.Equal(TimeSpan.FromMilliseconds(Check.IntervalMs), cluster.HealthCheck!.Passive!.ReactivationPeriod);

        var failOpen = HttpRouteTable.Build(state, Unhealthy("shop.1", "shop.2", "shop.3")).Clusters.Single(c => c.ClusterId == "shop:80");
        Assert.Equal(3, failOpen.Destinations!.Count);
    }

    [Fact]
    public void Host_mode_dnats_only_to_the_healthy_local_task()
    {
        var state = State();
        var (dnat, _) = HostRules.HostModeRules(state, "n1", Unhealthy("shop.1"));
        var rule = Assert.Single(dnat);
        Assert.Contains($"--to-destination {Ip(state, "shop.2")}:80", rule, StringComparison.Ordinal);
    }
}
