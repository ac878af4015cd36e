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
}
