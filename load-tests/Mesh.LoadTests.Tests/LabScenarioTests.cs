using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.LoadTests.Lab;
using Xunit;

namespace Mesh.LoadTests.Tests;

public class LabScenarioTests
{
    [Fact]
    public void Scale_state_has_n_services_with_t_tasks_each_and_the_naive_layout_one_dnat_per_task()
    {
        var state = ScaleScenario.MakeState(50, 10);
        Assert.Equal(50, state.Services.Count);
        Assert.Equal(500, state.Tasks.Count);
        Assert.Equal(500, state.Tasks.Select(t => t.Addresses["ingress"]).Distinct().Count());
        var naive = ScaleScenario.NaiveIptables(state, 10);
        var lines = naive.Split('\n');
        Assert.Equal(50, lines.Count(l => l.StartsWith(":SVC-", StringComparison.Ordinal)));
        Assert.Equal(500, lines.Count(l => l.Contains("-j DNAT", StringComparison.Ordinal)));
        Assert.Equal(450, lines.Count(l => l.Contains("--mode random", StringComparison.Ordinal)));
        Assert.Equal(50, lines.Count(l => l.StartsWith("-A PREROUTING", StringComparison.Ordinal)));
    }

    [Fact]
    public void Scale_one_change_rewrites_exactly_one_backend_element_and_no_chain()
    {
        var state = ScaleScenario.MakeState(20, 10);
        var changed = ScaleScenario.ReplaceOneTask(state, 10);
        var before = IngressSandboxTable.Build(state, "10.255.0.2");
        var after = IngressSandboxTable.Build(changed, "10.255.0.2");
        var ops = Mesh.Ingress.Kernel.Nftables.NftPlanner.Plan(after, Mesh.Ingress.Kernel.Nftables.NftPlanner.Expected(before))!.Operations;
        Assert.Equal(2, ops.Count);
        Assert.StartsWith("delete element ip mesh backends { ", ops[0], StringComparison.Ordinal);
        Assert.StartsWith("add element ip mesh backends { ", ops[1], StringComparison.Ordinal);
        Assert.Equal(before.Chains.Select(c => c.Name), after.Chains.Select(c => c.Name));
    }

    [Fact]
    public void Remote_state_and_scale_make_the_same_services_and_tasks_and_differ_only_in_addresses_and_listed_nodes()
    {
        var scale = ScaleScenario.MakeState(7, 300);
        var remote = RemoteStateScenario.MakeState(7, 300);

        // Remote-state lists the three nodes the tasks are on; scale lists none.
        Assert.Empty(scale.Nodes);
        Assert.Equal(["node0", "node1", "node2"], remote.Nodes.Select(n => n.Name));
        Assert.Equal(remote.Nodes.Select(n => n.Name).Order(StringComparer.Ordinal), remote.Tasks.Select(t => t.Node).Distinct().Order(StringComparer.Ordinal));

        // Each numbers the addresses its own way: remote-state's in the ingress /16 (past 250 tasks into the next /24),
        // scale's from 10.16.0.0; all distinct.
        static string[] Addresses(ClusterState s) => s.Tasks.Select(t => t.Addresses[OverlayNetwork.IngressName]).ToArray();
        Assert.Equal(["10.255.1.1", "10.255.1.250", "10.255.2.1"], Addresses(remote)[..1].Concat(Addresses(remote)[249..251]));
        Assert.Equal(["10.16.0.0", "10.16.0.249", "10.16.0.250"], Addresses(scale)[..1].Concat(Addresses(scale)[249..251]));
        Assert.Equal(2100, Addresses(remote).Distinct().Count());
        Assert.Equal(2100, Addresses(scale).Distinct().Count());

        // All else is the same, to the byte of the JSON a holder serves.
        var remoteAsScale = remote with { Nodes = [], Tasks = remote.Tasks.Select((t, i) => t with { Addresses = scale.Tasks[i].Addresses }).ToArray() };
        Assert.Equal(JsonSerializer.Serialize(scale, MeshJson.Options), JsonSerializer.Serialize(remoteAsScale, MeshJson.Options));
    }
}
