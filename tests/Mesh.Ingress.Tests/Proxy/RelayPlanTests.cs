using System.Collections.Frozen;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Mesh.Ingress.Proxy;
using Xunit;

namespace Mesh.Ingress.Tests.Proxy;

/// <summary>What the relay serves (only proxy=v2 ports, the service's running tasks on the target port) and how the node's and sandbox's rules leave those ports to it.</summary>
public sealed class RelayPlanTests
{
    private static readonly NodeNetworkOptions Options = new();

    /// <summary>pweb publishes 8083 (tcp and udp) through the relay and 8084 plainly; web is the plain mesh.</summary>
    private static ClusterState Cluster()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [PublishedPort.Parse("8080:80")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "pweb",
            Ports = [PublishedPort.Parse("8083:80,proxy=v2"), PublishedPort.Parse("8083:81/udp,proxy=v2"), PublishedPort.Parse("8084:80")],
        }).State;
        foreach (var task in new[] { "pweb.2", "pweb.1", "web.1" })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = task, Service = task.Split('.')[0], Node = "n1" }).State;
        }

        return state;
    }

    private static string Ip(ClusterState state, string task) => state.Tasks.Single(t => t.Name == task).Addresses[OverlayNetwork.IngressName];

    [Fact]
    public void Only_proxy_v2_ports_are_relayed_to_the_services_tasks_in_name_order_on_the_target_port()
    {
        var state = Cluster();
        var plan = RelayPlan.Build(state);
        Assert.Equal(["8083/tcp (pweb)", "8083/udp (pweb)"], plan.Select(p => p.ToString()));
        Assert.Equal([IPEndPoint.Parse(Ip(state, "pweb.1") + ":80"), IPEndPoint.Parse(Ip(state, "pweb.2") + ":80")], plan[0].Backends);
        Assert.Equal([IPEndPoint.Parse(Ip(state, "pweb.1") + ":81"), IPEndPoint.Parse(Ip(state, "pweb.2") + ":81")], plan[1].Backends);

        // A removed task leaves the plan; an unrelated change leaves it equal (the relay then touches nothing).
        var removed = StateTransitions.RemoveTask(state, "pweb.1");
        Assert.Equal([IPEndPoint.Parse(Ip(state, "pweb.2") + ":80")], RelayPlan.Build(removed)[0].Backends);
        var unrelated = StateTransitions.RemoveTask(state, "web.1");
        Assert.Equal(plan, RelayPlan.Build(unrelated));
        Assert.Empty(RelayPlan.Build(StateTransitions.RemoveService(state, "pweb")));
    }

    [Fact]
    public void A_task_this_node_finds_unhealthy_gets_no_new_connection_until_every_task_is_unhealthy_then_all_do()
    {
        var state = Cluster();
        state = StateTransitions.RemoveService(state, "pweb");
        state = StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "pweb",
            Ports = [PublishedPort.Parse("8083:80,proxy=v2")],
            HealthCheck = new HealthCheck { Path = "/healthz", IntervalMs = 1000, TimeoutMs = 500 },
        }).State;
        foreach (var task in new[] { "pweb.1", "pweb.2" })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = task, Service = "pweb", Node = "n1" }).State;
        }

        static BackendHealth Unhealthy(params string[] tasks) => new(tasks.ToFrozenSet(StringComparer.Ordinal));
        Assert.Equal([IPEndPoint.Parse(Ip(state, "pweb.2") + ":80")], RelayPlan.Build(state, Unhealthy("pweb.1")).Single().Backends);

        // Fail open, as the L4 dataplanes: with every task unhealthy the relay still has all of them.
        Assert.Equal(2, RelayPlan.Build(state, Unhealthy("pweb.1", "pweb.2")).Single().Backends.Count);

        // A service without a health check ignores verdicts (the task names are another service's).
        Assert.Equal(RelayPlan.Build(state), RelayPlan.Build(state, BackendHealth.None));
    }

    [Fact]
    public void The_node_dnats_relayed_ports_into_the_sandbox_whose_nftables_and_ipvs_rules_leave_them_alone()
    {
        var state = Cluster();
        var dnat = HostRules.Build(state, Options, "n1").Chains.Single(c => c.Table == "nat" && c.Name == HostRules.Ingress).Rules;
        Assert.Contains($"-p tcp -m tcp --dport 8083 -j DNAT --to-destination {Options.SandboxGatewayAddress}:8083", dnat);
        Assert.Contains($"-p udp -m udp --dport 8083 -j DNAT --to-destination {Options.SandboxGatewayAddress}:8083", dnat);
        Assert.Contains($"-p tcp -m tcp --dport 8084 -j DNAT --to-destination {Options.SandboxGatewayAddress}:8084", dnat);

        var published = IngressSandboxTable.Build(state, "10.255.0.2").Maps.Single(m => m.Name == "published-ports").Elements.Select(e => e.Text).ToList();
        Assert.DoesNotContain(published, e => e.Contains(". 8083 :", StringComparison.Ordinal));
        Assert.Contains(published, e => e.StartsWith("tcp . 8084 :", StringComparison.Ordinal));

        var marks = IpvsSandboxRules.Rules(state, "10.255.0.2").Chains.Single(c => c.Name == IpvsSandboxRules.MarkPorts).Rules;
        Assert.DoesNotContain(marks, r => r.Contains("--dport 8083 ", StringComparison.Ordinal));
        Assert.Contains(marks, r => r.Contains("--dport 8084 ", StringComparison.Ordinal));
    }

    [Fact]
    public void Round_robin_takes_each_backend_in_turn_and_a_removed_one_gets_nothing_new()
    {
        IPEndPoint a = IPEndPoint.Parse("10.255.0.6:80"), b = IPEndPoint.Parse("10.255.0.7:80"), c = IPEndPoint.Parse("10.255.0.8:80");
        var rotation = new BackendRotation([a, b, c]);
        Assert.Equal([a, b, c, a, b, c], Enumerable.Range(0, 6).Select(_ => rotation.Next()));
        rotation.Replace([a, c]);
        var next = Enumerable.Range(0, 10).Select(_ => rotation.Next()).ToList();
        Assert.DoesNotContain(b, next);
        Assert.Equal(5, next.Count(x => Equals(x, a)));
        rotation.Replace([]);
        Assert.Null(rotation.Next());
    }

    // proxy-protocol.txt 2.2: UDP over IPv4 is family/transport 0x12, then the same 12 address bytes as TCP.
    [Fact]
    public void The_udp_form_of_the_header_is_dgram_over_inet()
    {
        var header = ProxyHeaderV2.ForConnection(ProxyTransport.Datagram, IPEndPoint.Parse("198.18.0.100:51000"), IPEndPoint.Parse("198.18.0.13:8083")).ToBytes();
        Assert.Equal(
            [
                0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
                0x21, 0x12, 0x00, 0x0C,
                198, 18, 0, 100, 198, 18, 0, 13,
                0xC7, 0x38, 0x1F, 0x93,
            ],
            header);
    }
}
