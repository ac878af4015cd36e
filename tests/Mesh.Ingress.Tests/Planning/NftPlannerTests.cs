using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Tests.Planning;

/// <summary>The planner's batches, by what each message does (the kernel's side: NftGenerationTests' oracle).</summary>
public class NftPlannerTests
{
    private static ClusterState Cluster(int tasks, string service = "web")
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = service, Ports = [new PublishedPort(8080, 80)] }).State;
        for (var i = 0; i < tasks; i++)
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = service, Node = "n1" }).State;
        }

        return state;
    }

    private static IReadOnlyList<string> Plan(NftDesiredTable desired, NftTableState actual) => NftPlanner.Plan(desired, actual)?.Operations ?? [];

    [Fact]
    public void A_missing_table_is_created_whole_in_one_batch()
    {
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        var ops = Plan(desired, NftTableState.Missing);
        Assert.Equal("add table ip mesh", ops[0]);
        Assert.Contains("add map ip mesh published-ports", ops);
        Assert.Contains("add map ip mesh service-chains", ops);
        Assert.Contains("add chain ip mesh svc-web", ops);
        Assert.Contains(ops, o => o.StartsWith("add element ip mesh __map%d", StringComparison.Ordinal) && o.Contains("3 elements", StringComparison.Ordinal));
        Assert.Contains(ops, o => o.StartsWith("add rule ip mesh svc-web: [meta load L4Proto", StringComparison.Ordinal));
        Assert.Contains(ops, o => o.StartsWith("add element ip mesh service-chains { 0x00010000 : goto svc-web }", StringComparison.Ordinal));
        Assert.Equal(2, ops.Count(o => o.StartsWith("add rule ip mesh source-nat:", StringComparison.Ordinal)));
        Assert.Equal("add chain ip mesh state", ops[^2]);
    }

    [Fact]
    public void The_same_state_again_needs_no_transaction()
    {
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        Assert.Null(NftPlanner.Plan(desired, NftPlanner.Expected(desired)));
        Assert.NotNull(NftPlanner.Plan(IngressSandboxTable.Build(Cluster(2), "10.255.0.2"), NftPlanner.Expected(desired)));
    }

    [Fact]
    public void A_task_change_rewrites_only_that_services_chain_and_touches_no_element()
    {
        var before = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        var after = IngressSandboxTable.Build(Cluster(2), "10.255.0.2");
        var ops = Plan(after, NftPlanner.Expected(before));
        Assert.Equal(4, ops.Count);
        Assert.Equal("flush chain ip mesh svc-web", ops[0]);
        Assert.StartsWith("add map ip mesh __map%d", ops[1], StringComparison.Ordinal);
        Assert.StartsWith("add element ip mesh __map%d { 0x00000000 : 0x0aff0004", ops[2], StringComparison.Ordinal);
        Assert.StartsWith("add rule ip mesh svc-web:", ops[3], StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_service_adds_its_chain_and_only_its_elements_and_a_removed_one_loses_its_elements_before_its_chain()
    {
        var one = Cluster(1);
        var two = StateTransitions.AddTask(StateTransitions.CreateService(one, new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State, new TaskSpec { Service = "api", Node = "n1" }).State;
        var before = IngressSandboxTable.Build(one, "10.255.0.2");
        var after = IngressSandboxTable.Build(two, "10.255.0.2");

        var added = Plan(after, NftPlanner.Expected(before));
        Assert.Equal("add chain ip mesh svc-api", added[0]);
        Assert.Equal(["add element ip mesh published-ports { 0x0600000023820000 : 0x01010000 }", "add element ip mesh service-chains { 0x01010000 : goto svc-api }"],
            added.Where(o => o.StartsWith("add element ip mesh published-ports", StringComparison.Ordinal) || o.StartsWith("add element ip mesh service-chains", StringComparison.Ordinal)));
        Assert.DoesNotContain(added, o => o.StartsWith("delete", StringComparison.Ordinal) || o.Contains("svc-web", StringComparison.Ordinal));

        var removed = Plan(before, NftPlanner.Expected(after));
        Assert.Equal(
            ["delete element ip mesh published-ports { 0x0600000023820000 }", "delete element ip mesh service-chains { 0x01010000 }", "delete chain ip mesh svc-api"],
            removed);
    }

    [Fact]
    public void A_service_without_tasks_gets_a_chain_that_does_not_dnat()
    {
        var desired = IngressSandboxTable.Build(Cluster(0), "10.255.0.2");
        Assert.Empty(desired.Chains.Single().Rules);
        Assert.Contains(Plan(desired, NftTableState.Missing), o => o.StartsWith("add rule ip mesh svc-web: [counter] comment \"h=", StringComparison.Ordinal));
    }

    [Fact]
    public void A_changed_sandbox_address_rebuilds_the_table()
    {
        var before = IngressSandboxTable.Build(Cluster(1), "10.255.0.2");
        var after = IngressSandboxTable.Build(Cluster(1), "10.255.0.9");
        Assert.Equal(["delete table ip mesh", "add table ip mesh"], Plan(after, NftPlanner.Expected(before)).Take(2));
    }

    [Fact]
    public void A_bad_sandbox_address_is_refused_naming_it()
    {
        var e = Assert.Throws<ArgumentException>(() => IngressSandboxTable.Build(Cluster(1), "10.255.0.300"));
        Assert.Contains("10.255.0.300", e.Message, StringComparison.Ordinal);
    }
}
