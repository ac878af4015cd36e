using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Health;

namespace Mesh.Ingress.Tests.Health;

/// <summary>What the health port counts: running tasks of each service on this node, unknown until the first sync.</summary>
public class LocalTaskCountsTests
{
    [Fact]
    public void Counts_running_tasks_of_each_service_on_this_node_only_and_knows_nothing_before_the_first_sync()
    {
        var state = ClusterState.Empty;
        foreach (var node in new[] { "n1", "n2" })
        {
            state = StateTransitions.RegisterNode(state, new NodeSpec { Name = node, AdvertiseAddress = node == "n1" ? "198.18.0.11" : "198.18.0.12" }).State;
        }

        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web3", Ports = [PublishedPort.Parse("8082:80,traffic=local")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "idle" }).State;
        foreach (var (task, node) in new[] { ("web3.1", "n1"), ("web3.2", "n1"), ("web3.3", "n2") })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = task, Service = "web3", Node = node }).State;
        }

        var counts = new LocalTaskCounts();
        Assert.False(counts.Known);
        Assert.Null(counts.Of("web3"));

        counts.Update(state, "n1");
        Assert.True(counts.Known);
        Assert.Equal(2, counts.Of("web3"));
        Assert.Equal(2, counts.Of("WEB3"));
        Assert.Equal(0, counts.Of("idle"));
        Assert.Null(counts.Of("nosuch"));

        counts.Update(StateTransitions.RemoveTask(state, "web3.3"), "n2");
        Assert.Equal(0, counts.Of("web3"));
    }
}
