using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Egress;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>Which local tasks get a gateway leg, at which address: the ingress address moved into the gateway subnet.</summary>
public class EgressPlannerTests
{
    private static ServiceTask Task(string name, string node, string? ingress, string? netns = "/run/netns/x", TaskState state = TaskState.Running) => new()
    {
        Name = name,
        Service = "web",
        Node = node,
        NetnsPath = netns is null ? null : netns + name,
        State = state,
        Addresses = ingress is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["ingress"] = ingress },
    };

    [Fact]
    public void Local_tasks_with_a_namespace_get_a_leg_at_their_ingress_offset_and_nothing_else_does()
    {
        var state = new ClusterState
        {
            Tasks =
            [
                Task("web.1", "n1", "10.255.0.5"),
                Task("web.2", "n1", "10.255.3.7"),
                Task("web.3", "n2", "10.255.0.6"),                   // another node's
                Task("web.4", "n1", "10.255.0.8", netns: null),      // no namespace to enter
                Task("web.5", "n1", null),                           // not on ingress
                Task("web.6", "n1", "10.255.0.1"),                   // the gateway's offset
                Task("web.7", "n1", "10.0.1.9"),                     // not an ingress address
                Task("web.8", "n1", "10.255.0.9", state: TaskState.NodeDown),
            ],
        };

        var legs = EgressPlanner.Plan(state, "n1", new NodeNetworkOptions());
        Assert.Equal(
        [
            new EgressLeg("web.1", "/run/netns/xweb.1", EgressPlanner.HostVeth("web.1"), "172.18.0.5/16"),
            new EgressLeg("web.2", "/run/netns/xweb.2", EgressPlanner.HostVeth("web.2"), "172.18.3.7/16"),
        ], legs);
        Assert.Matches("^meg[0-9a-f]{8}$", legs[0].HostVeth);
        Assert.NotEqual(legs[0].HostVeth, legs[1].HostVeth);
    }

    [Fact]
    public void A_smaller_gateway_subnet_leaves_out_the_offsets_it_cannot_hold()
    {
        var state = new ClusterState { Tasks = [Task("web.1", "n1", "10.255.0.5"), Task("web.2", "n1", "10.255.1.5")] };
        var legs = EgressPlanner.Plan(state, "n1", new NodeNetworkOptions { GatewayAddress = "192.168.7.1", GatewayPrefixLength = 24 });
        Assert.Equal("192.168.7.5/24", Assert.Single(legs).Address);
    }
}
