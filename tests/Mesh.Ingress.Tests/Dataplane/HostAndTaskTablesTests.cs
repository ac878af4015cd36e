using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Dataplane;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>The planned host and task tables of the nftables dataplane, and doctor's verdict on what no dataplane needs.</summary>
public class HostAndTaskTablesTests
{
    private static ClusterState State()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [PublishedPort.Parse("8080:80"), PublishedPort.Parse("8080:80/udp")] }).State;
        return StateTransitions.AddTask(state, new TaskSpec { Name = "web.1", Service = "web", Node = "n1" }).State;
    }

    [Fact]
    public void Published_ports_change_only_the_ingress_chain_and_never_the_skeleton()
    {
        var one = HostNatTable.Build(State(), new NodeNetworkOptions(), "n1");
        var two = HostNatTable.Build(StateTransitions.CreateService(State(), new ServiceSpec { Name = "api", Ports = [PublishedPort.Parse("9090:90")] }).State, new NodeNetworkOptions(), "n1");
        Assert.Equal(one.Skeleton, two.Skeleton);
        Assert.Equal(["prerouting", "output", "postrouting"], one.BaseChains.Select(c => c.Name));
        Assert.Equal(["tcp dport 8080 dnat to 172.18.0.2:8080", "udp dport 8080 dnat to 172.18.0.2:8080"], one.Chains.Single().Rules.Select(r => r.Text));
        Assert.Contains("tcp dport 9090 dnat to 172.18.0.2:9090", two.Chains.Single().Rules.Select(r => r.Text));
    }

    [Fact]
    public void A_task_table_exists_only_when_it_publishes_or_resolves_and_its_dns_ports_read_back_from_its_rules()
    {
        var state = State();
        var task = state.Tasks.Single();
        var service = state.Services.Single();
        Assert.Null(TaskIngressTable.Build(task, service with { Ports = [] }));
        var table = TaskIngressTable.Build(task, service, new DnsPorts(41000, 42000))!;
        var rules = table.BaseChains.SelectMany(c => c.Rules.Select(r => new Rule(Family.Ip, table.Name, c.Name, r.Expressions)));
        Assert.Equal(new DnsPorts(41000, 42000), TaskIngressTable.DnsPortsIn(rules));
        Assert.Null(TaskIngressTable.DnsPortsIn(TaskIngressTable.Build(task, service)!.BaseChains.SelectMany(c => c.Rules.Select(r => new Rule(Family.Ip, table.Name, c.Name, r.Expressions)))));
    }

    [Fact]
    public void A_missing_binary_only_the_lab_or_trace_uses_never_fails_the_doctor()
    {
        using var output = new StringWriter();
        var checks = new[] { new DoctorCheck("nft: mesh trace", false, DoctorNeed.None, "not found on PATH", "apt-get install nftables") };
        Assert.Equal(0, DoctorChecks.Report(output, checks, Mesh.Ingress.Daemon.DataplaneChoice.Nftables, "test"));
        Assert.Contains("no    nft: mesh trace: not found on PATH  (not needed by the nftables dataplane)", output.ToString(), StringComparison.Ordinal);
    }
}
