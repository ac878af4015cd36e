using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Store;

/// <summary>A task attached by a CNI runtime keeps the container's ID: validated, unique, and nothing changes on refusal.</summary>
public sealed class TaskContainerIdTests
{
    private static ClusterState Cluster()
    {
        var s = new ClusterState();
        s = StateTransitions.RegisterNode(s, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        return StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
    }

    [Fact]
    public void The_container_id_is_kept_with_the_task()
    {
        var (_, task) = StateTransitions.AddTask(Cluster(), new TaskSpec { Service = "web", Node = "n1", ContainerId = "3f9a0c1b2d" });
        Assert.Equal("3f9a0c1b2d", task.ContainerId);
        Assert.Equal("web.1", task.Name);
    }

    [Fact]
    public void A_second_task_for_the_same_container_is_a_conflict_naming_the_first()
    {
        var (state, _) = StateTransitions.AddTask(Cluster(), new TaskSpec { Service = "web", Node = "n1", ContainerId = "abc" });
        var e = Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", ContainerId = "abc" }));
        Assert.Equal("container 'abc' is already task 'web.1'", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-abc")]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("a\nb")]
    public void A_malformed_container_id_is_refused_by_field(string id)
    {
        var e = Assert.Throws<ValidationException>(() => StateTransitions.AddTask(Cluster(), new TaskSpec { Service = "web", Node = "n1", ContainerId = id }));
        Assert.Equal("containerId", e.Field);
    }

    [Fact]
    public void A_container_id_longer_than_the_limit_is_refused()
    {
        var e = Assert.Throws<ValidationException>(() => ObjectRules.Task(new ServiceTask { Name = "web.1", Service = "web", Node = "n1", ContainerId = new string('a', Validate.MaxContainerId + 1) }));
        Assert.Equal("containerId", e.Field);
    }
}
