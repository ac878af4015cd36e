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
        Assert.Contains("add map ip mesh port-chains", ops);
        Assert.Contains("add map ip mesh backends", ops);
        Assert.Contains("add map ip mesh maglev", ops);
        Assert.Contains("add chain ip mesh pick-rr-3", ops);
        Assert.DoesNotContain(ops, o => o.Contains("__map", StringComparison.Ordinal)); // per service: elements only
        Assert.Contains(ops, o => o.StartsWith("add element ip mesh backends", StringComparison.Ordinal) && o.Contains("3 elements", StringComparison.Ordinal));
        Assert.Contains(ops, o => o.StartsWith("add rule ip mesh pick-rr-3: [meta load L4Proto", StringComparison.Ordinal));
        Assert.Contains(ops, o => o.StartsWith("add element ip mesh port-chains { 0x00010000060000001f900000 : goto pick-rr-3 }", StringComparison.Ordinal));
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

    /// <summary>web.1 of three replaced by web.4 at a new address: the state the kernel holds before and after.</summary>
    private static (ClusterState Before, ClusterState After, string Address) Replaced()
    {
        var before = Cluster(3);
        var (added, task) = StateTransitions.AddTask(before, new TaskSpec { Service = "web", Node = "n1" });
        return (before, StateTransitions.RemoveTask(added, "web.1"), task.Addresses["ingress"]);
    }

    [Fact]
    public void A_replaced_task_rewrites_its_own_slot_only_no_chain_and_a_restarted_daemon_keeps_the_slots()
    {
        var (before, after, address) = Replaced();
        var held = NftPlanner.Expected(IngressSandboxTable.Build(before, "10.255.0.2"));
        var desired = IngressSandboxTable.Build(after, "10.255.0.2");
        var ops = Plan(desired, held);
        var hex = Convert.ToHexStringLower(System.Net.IPAddress.Parse(address).GetAddressBytes());
        Assert.Equal(["delete element ip mesh backends { 0x060000001f90000000000000 }", $"add element ip mesh backends {{ 0x060000001f90000000000000 : 0x{hex}00500000 }}"], ops);

        // web.4 sits in web.1's slot 0, not where the task order would put it (last): a daemon started now, which reads
        // the kernel before planning, keeps it there and writes nothing.
        var kernel = NftPlanner.Expected(NftPlanner.Stabilize(desired, held));
        Assert.Contains(NftPlanner.Stabilize(desired, held).Maps.Single(m => m.Name == "backends").Elements, e => e.Text == $"tcp . 8080 . 0 : {address} . 80");
        Assert.Null(NftPlanner.Plan(IngressSandboxTable.Build(after, "10.255.0.2"), kernel));
    }

    /// <summary>
    /// Tasks the kernel's table does not hold yet (here: the service had none) get their slots in the desired order, so
    /// stabilizing keeps the desired objects themselves: the executor's memory then holds one list of those elements,
    /// not the desired one and a copy (10,000 copies on a cold start at 10,000 services).
    /// </summary>
    [Fact]
    public void Slots_placed_as_desired_keep_the_desired_group_objects()
    {
        var held = NftPlanner.Expected(IngressSandboxTable.Build(Cluster(0), "10.255.0.2"));
        var desired = IngressSandboxTable.Build(Cluster(3), "10.255.0.2");
        var stable = NftPlanner.Stabilize(desired, held);
        Assert.Same(desired, stable);
        Assert.Equal(["tcp . 8080 . 0", "tcp . 8080 . 1", "tcp . 8080 . 2"], stable.Maps.Single(m => m.Name == "backends").Elements.Select(e => e.Text[..e.Text.IndexOf(" : ", StringComparison.Ordinal)]));
    }

    [Fact]
    public void A_task_leaving_moves_the_last_slot_into_its_own_and_the_port_to_the_smaller_picking_chain()
    {
        var before = Cluster(3);
        var after = StateTransitions.RemoveTask(before, "web.1");
        var ops = Plan(IngressSandboxTable.Build(after, "10.255.0.2"), NftPlanner.Expected(IngressSandboxTable.Build(before, "10.255.0.2")));
        Assert.Equal("add chain ip mesh pick-rr-2", ops[0]);
        Assert.StartsWith("add rule ip mesh pick-rr-2:", ops[1], StringComparison.Ordinal);
        var web3 = Convert.ToHexStringLower(System.Net.IPAddress.Parse(before.Tasks.Single(t => t.Name == "web.3").Addresses["ingress"]).GetAddressBytes());
        Assert.Contains(ops, o => o == $"add element ip mesh backends {{ 0x060000001f90000000000000 : 0x{web3}00500000 }}");
        Assert.Contains(ops, o => o.StartsWith("add element ip mesh port-chains", StringComparison.Ordinal) && o.EndsWith(": goto pick-rr-2 }", StringComparison.Ordinal));
        Assert.Equal("delete chain ip mesh pick-rr-3", ops[^1]);
        Assert.Equal(7, ops.Count); // chain, rule; port-chains -1 +1; backends slots 0 and 2 out (one message), 0 in; stale chain
    }

    [Fact]
    public void A_new_service_adds_only_its_elements_and_a_removed_one_deletes_only_its_elements()
    {
        var one = Cluster(1);
        var two = StateTransitions.AddTask(StateTransitions.CreateService(one, new ServiceSpec { Name = "api", Ports = [new PublishedPort(9090, 90)] }).State, new TaskSpec { Service = "api", Node = "n1" }).State;
        var before = IngressSandboxTable.Build(one, "10.255.0.2");
        var after = IngressSandboxTable.Build(two, "10.255.0.2");

        var added = Plan(after, NftPlanner.Expected(before));
        Assert.Equal(3, added.Count);
        Assert.Equal("add element ip mesh published-ports { 0x0600000023820000 : 0x01010000 }", added[0]);
        Assert.Equal("add element ip mesh port-chains { 0x010100000600000023820000 : goto pick-rr-1 }", added[1]);
        Assert.StartsWith("add element ip mesh backends { 0x060000002382000000000000 : 0x", added[2], StringComparison.Ordinal);

        var removed = Plan(before, NftPlanner.Expected(after));
        Assert.Equal(
            ["delete element ip mesh published-ports { 0x0600000023820000 }", "delete element ip mesh port-chains { 0x010100000600000023820000 }", "delete element ip mesh backends { 0x060000002382000000000000 }"],
            removed);
    }

    [Fact]
    public void A_service_without_tasks_is_published_but_dispatched_nowhere()
    {
        var desired = IngressSandboxTable.Build(Cluster(0), "10.255.0.2");
        Assert.Empty(desired.Chains);
        Assert.Single(desired.Maps.Single(m => m.Name == "published-ports").Elements);
        Assert.Empty(desired.Maps.Single(m => m.Name == "port-chains").Elements);
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
