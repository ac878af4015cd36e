using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Tests.Planning;

public class NftPlannerTests
{
    private static ClusterState Cluster(int tasks)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
        for (var i = 0; i < tasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        }

        return state;
    }

    /// <summary>Simulates the kernel after a script: the chains and the rule comments the planner wrote.</summary>
    private static NftTableState Apply(NftDesiredTable desired)
    {
        var script = NftPlanner.Plan(desired, NftTableState.Missing)!;
        var chains = new Dictionary<string, List<string>>();
        foreach (var line in script.Split('\n'))
        {
            var parts = line.Split(' ');
            if (line.StartsWith("add rule ", StringComparison.Ordinal))
            {
                var comment = line[(line.IndexOf("comment \"", StringComparison.Ordinal) + 9)..].TrimEnd('"');
                chains.TryAdd(parts[4], []);
                chains[parts[4]].Add(comment);
            }
        }

        var json = "{\"nftables\":[" + string.Join(',', chains.SelectMany(c => c.Value.Select(comment => $"{{\"rule\":{{\"chain\":\"{c.Key}\",\"comment\":\"{comment}\"}}}}"))) + "]}";
        return NftTableState.Parse(json);
    }

    [Fact]
    public void A_missing_table_is_created_whole_in_one_script()
    {
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        var script = NftPlanner.Plan(desired, NftTableState.Missing)!;
        Assert.StartsWith("table ip mesh {}\ndelete table ip mesh\ntable ip mesh {\n", script, StringComparison.Ordinal);
        Assert.Contains("add rule ip mesh svc-web tcp dport 8080 dnat ip addr . port to numgen inc mod 3 map { 0 : 10.255.0.4 . 80, 1 : 10.255.0.5 . 80, 2 : 10.255.0.6 . 80 }", script, StringComparison.Ordinal);
        Assert.Contains("add element ip mesh published-ports { tcp . 8080 : 0x00000100 }", script, StringComparison.Ordinal);
        Assert.Contains("add element ip mesh service-chains { 0x00000100 : goto svc-web }", script, StringComparison.Ordinal);
        Assert.Contains("snat to 10.255.0.2", script, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_state_again_needs_no_transaction()
    {
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        Assert.Null(NftPlanner.Plan(desired, Apply(desired)));
    }

    [Fact]
    public void A_task_change_rewrites_only_that_services_chain()
    {
        var before = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        var after = IngressSandboxTable.Build(Cluster(2), "10.255.0.2");
        var script = NftPlanner.Plan(after, Apply(before))!;
        Assert.Equal(
            "flush chain ip mesh svc-web\nadd rule ip mesh svc-web tcp dport 8080 dnat ip addr . port to numgen inc mod 2 map { 0 : 10.255.0.4 . 80, 1 : 10.255.0.5 . 80 } comment \"" + Apply(after).Chains["svc-web"][0] + "\"\n",
            script);
    }

    [Fact]
    public void A_removed_service_loses_its_map_elements_before_its_chain_is_deleted()
    {
        var before = IngressSandboxTable.Build(Cluster(1), "10.255.0.2");
        var after = IngressSandboxTable.Build(StateTransitions.RemoveService(Cluster(1), "web"), "10.255.0.2");
        var script = NftPlanner.Plan(after, Apply(before))!;
        var flush = script.IndexOf("flush map ip mesh service-chains", StringComparison.Ordinal);
        var delete = script.IndexOf("delete chain ip mesh svc-web", StringComparison.Ordinal);
        Assert.True(flush >= 0 && delete > flush, script);
        Assert.DoesNotContain("add element", script, StringComparison.Ordinal);
    }

    [Fact]
    public void A_service_without_tasks_gets_a_chain_that_does_not_dnat()
    {
        var desired = IngressSandboxTable.Build(Cluster(0), "10.255.0.2");
        Assert.Empty(desired.Chains.Single().Rules);
        Assert.Contains("add rule ip mesh svc-web counter comment", NftPlanner.Plan(desired, NftTableState.Missing)!, StringComparison.Ordinal);
    }

    [Fact]
    public void What_a_transaction_leaves_behind_plans_no_further_change()
    {
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        Assert.Null(NftPlanner.Plan(desired, NftPlanner.Expected(desired)));
        Assert.NotNull(NftPlanner.Plan(IngressSandboxTable.Build(Cluster(2), "10.255.0.2"), NftPlanner.Expected(desired)));
    }

    [Fact]
    public void A_changed_sandbox_address_rebuilds_the_table()
    {
        var before = IngressSandboxTable.Build(Cluster(1), "10.255.0.2");
        var after = IngressSandboxTable.Build(Cluster(1), "10.255.0.9");
        Assert.StartsWith("table ip mesh {}\ndelete table ip mesh\n", NftPlanner.Plan(after, Apply(before)), StringComparison.Ordinal);
    }
}
