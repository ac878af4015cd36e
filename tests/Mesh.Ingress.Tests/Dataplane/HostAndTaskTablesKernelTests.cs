using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Tests.EndToEnd;
using Mesh.Ipvs.Netlink.NfTables;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// The nftables dataplane's host and task tables (<c>ip mesh-host</c>, <c>ip mesh-task</c>) in real namespaces, written
/// over netlink and read by Debian's nft as the independent oracle; a namespace holding the iptables version's
/// <c>MESH-*</c> chains converges with none left; a FORWARD whose policy is DROP keeps the accepts in iptables.
/// </summary>
public sealed class HostAndTaskTablesKernelTests : IAsyncLifetime
{
    // Not mesh-*: `lab down` in parallel tests deletes those.
    private readonly string _ns = $"hosttables-{Environment.ProcessId}";
    private readonly ProcessCommandRunner _runner = new(ProcessCommandRunner.DefaultTimeout);
    private NetworkNamespacePath Netns => NetworkNamespacePath.Named(_ns);

    public async Task InitializeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
            await Shell.CheckedAsync("ip", "netns", "add", _ns);
        }
    }

    public async Task DisposeAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _ns);
        }
    }

    private static (ClusterState State, string Web1) Cluster(params string[] ports)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [.. ports.Select(PublishedPort.Parse)] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "hostweb", Ports = [PublishedPort.Parse("8091:80,mode=host")] }).State;
        foreach (var task in new[] { "web.1", "hostweb.1", "hostweb.2" })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Name = task, Service = task.Split('.')[0], Node = "n1" }).State;
        }

        return (state, state.Tasks.Single(t => t.Name == "web.1").Addresses[OverlayNetwork.IngressName]);
    }

    private Task<string> NftAsync(params string[] args) => Shell.CheckedAsync("ip", ["netns", "exec", _ns, "nft", .. args]);

    private async Task<string> IptablesMeshAsync() =>
        string.Join('\n', (await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft-save")).Split('\n').Where(l => l.Contains("MESH", StringComparison.Ordinal)));

    private HostRulesWriter HostWriter(NfTablesExecutor nft) =>
        new(new IptablesExecutor(_runner, IptablesFlavour.Nft), nft, true, _runner, NullLogger<HostRulesWriter>.Instance, Netns);

    /// <summary>The host's part of the node's plan, as the daemon hands it to the writer.</summary>
    private HostPlan HostPlan(ClusterState state) => new NodePlanner(true, new NodeNetworkOptions(), new IpvsOptions(), Netns).PlanHost(state, "n1", null);

    /// <summary>As the task loop does it: the DNS listeners bound first (on the ports the rules point at), then the planned rules written.</summary>
    private async Task<bool> ConvergeTaskAsync(TaskRulesWriter writer, ServiceTask task, ClusterService service, Func<DnsPorts?, DnsPorts?> ensureDns)
    {
        var ports = ensureDns(await writer.ReadDnsPortsAsync(Netns, CancellationToken.None));
        return await writer.ConvergeAsync(Netns, new TaskIngress(TaskRules.Build(task, service, ports), TaskIngressTable.Build(task, service, ports), ports), CancellationToken.None);
    }

    private ulong TableHandle()
    {
        using var handle = NfTablesHandle.Open(Netns.Path);
        return handle.GetTable(Family.Ip, HostNatTable.Name)!.Handle;
    }

    [LabFact]
    public async Task The_host_table_dnats_published_ports_and_spreads_host_mode_and_a_port_change_rewrites_only_its_chain()
    {
        var (state, _) = Cluster("8080:80");
        var nft = new NfTablesExecutor();
        var writer = HostWriter(nft);
        Assert.True(await writer.ConvergeAsync(Netns, HostPlan(state), CancellationToken.None));
        var hostweb = state.Tasks.Where(t => t.Service == "hostweb").Select(t => t.Addresses[OverlayNetwork.IngressName]).Order(StringComparer.Ordinal).ToList();

        var chain = await NftAsync("list", "chain", "ip", HostNatTable.Name, HostNatTable.IngressChain);
        Assert.Contains("tcp dport 8080 dnat to 172.18.0.2:8080", chain, StringComparison.Ordinal);
        Assert.Contains($"tcp dport 8091 dnat ip to numgen inc mod 2 map {{ 0 : {hostweb[0]} . 80, 1 : {hostweb[1]} . 80 }}", chain, StringComparison.Ordinal);
        var table = await NftAsync("list", "table", "ip", HostNatTable.Name);
        Assert.Contains("type nat hook prerouting priority dstnat; policy accept;", table, StringComparison.Ordinal);
        Assert.Contains("fib daddr type local jump ingress", table, StringComparison.Ordinal);
        Assert.Contains("oifname \"mesh-gwbridge\" fib saddr type local masquerade", table, StringComparison.Ordinal);
        Assert.Contains("ip saddr 172.18.0.0/16 oifname != \"mesh-gwbridge\" masquerade", table, StringComparison.Ordinal);
        Assert.Equal("", await IptablesMeshAsync()); // FORWARD accepts only where iptables' FORWARD may drop: not here

        // Same state: nothing written. A new published port: the ingress chain alone is refilled, the table is not rebuilt.
        Assert.False(await writer.ConvergeAsync(Netns, HostPlan(state), CancellationToken.None));
        var handleBefore = TableHandle();
        var (more, _) = Cluster("8080:80", "9090:90/udp");
        Assert.True(await writer.ConvergeAsync(Netns, HostPlan(more), CancellationToken.None));
        Assert.Contains("udp dport 9090 dnat to 172.18.0.2:9090", await NftAsync("list", "chain", "ip", HostNatTable.Name, HostNatTable.IngressChain), StringComparison.Ordinal);
        Assert.Equal(handleBefore, TableHandle());

        // A rule appended by hand to a Mesh chain is drift: repaired by the next converge that reads the kernel.
        await NftAsync("add", "rule", "ip", HostNatTable.Name, HostNatTable.IngressChain, "tcp", "dport", "1", "accept");
        Assert.True(await HostWriter(new NfTablesExecutor()).ConvergeAsync(Netns, HostPlan(more), CancellationToken.None));
        Assert.DoesNotContain("dport 1 accept", await NftAsync("list", "table", "ip", HostNatTable.Name), StringComparison.Ordinal);
    }

    [LabFact]
    public async Task A_host_upgraded_from_iptables_loses_its_mesh_chains_and_a_dropping_forward_keeps_only_the_accepts_there()
    {
        var (state, _) = Cluster("8080:80");
        var iptables = new IptablesExecutor(_runner, IptablesFlavour.Nft);
        Assert.True(await iptables.ApplyAsync(Netns, HostRules.Build(state, new NodeNetworkOptions(), "n1"), HostRules.Tables, CancellationToken.None));
        Assert.Contains("-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j DNAT", await IptablesMeshAsync(), StringComparison.Ordinal);
        Assert.True(IptablesPresence.Read(Netns.Path).NftHoldsMeshChains("nat"));

        Assert.True(await HostWriter(new NfTablesExecutor()).ConvergeAsync(Netns, HostPlan(state), CancellationToken.None));
        Assert.Equal("", await IptablesMeshAsync());
        Assert.Contains("dnat to 172.18.0.2:8080", await NftAsync("list", "table", "ip", HostNatTable.Name), StringComparison.Ordinal);

        // Docker's DROP policy: the accepts must be in iptables' filter FORWARD, where the DROP is.
        await Shell.CheckedAsync("ip", "netns", "exec", _ns, "iptables-nft", "-P", "FORWARD", "DROP");
        Assert.True(IptablesPresence.Read(Netns.Path).ForwardMayDrop);
        var writer = HostWriter(new NfTablesExecutor());
        Assert.True(await writer.ConvergeAsync(Netns, HostPlan(state), CancellationToken.None));
        var kept = await IptablesMeshAsync();
        Assert.Contains("-A FORWARD -j MESH-INGRESS", kept, StringComparison.Ordinal);
        Assert.Contains("-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT", kept, StringComparison.Ordinal);
        Assert.DoesNotContain("-j DNAT", kept, StringComparison.Ordinal);
        Assert.DoesNotContain("-j MASQUERADE", kept, StringComparison.Ordinal);
        var (_, filter) = await writer.ReadForTraceAsync(CancellationToken.None);
        Assert.Contains(":FORWARD DROP", filter, StringComparison.Ordinal);
    }

    [LabFact]
    public async Task The_task_table_redirects_accepts_and_nats_dns_and_an_upgraded_task_keeps_its_dns_ports_and_loses_its_iptables()
    {
        var (state, web1) = Cluster("8080:80");
        var task = state.Tasks.Single(t => t.Name == "web.1");
        var service = state.Services.Single(s => s.Name == "web");

        // The iptables version's rules, with the resolver's ports in them.
        var iptables = new IptablesExecutor(_runner, IptablesFlavour.Nft);
        Assert.True(await iptables.ApplyAsync(Netns, TaskRules.Build(task, service, new DnsPorts(40001, 40002)), TaskRules.Tables, CancellationToken.None));
        Assert.Contains("MESH-TASK", await IptablesMeshAsync(), StringComparison.Ordinal);

        var writer = new TaskRulesWriter(iptables, new NfTablesExecutor(), true, _runner, NullLogger<TaskRulesWriter>.Instance);
        DnsPorts? offered = null;
        Assert.True(await ConvergeTaskAsync(writer, task, service, p => offered = p));
        Assert.Equal(new DnsPorts(40001, 40002), offered);
        Assert.Equal("", await IptablesMeshAsync());
        var table = await NftAsync("list", "table", "ip", TaskIngressTable.Name);
        Assert.Contains($"ip daddr {web1} tcp dport 8080 dnat to {web1}:80", table, StringComparison.Ordinal);
        Assert.Contains($"ip daddr {web1} tcp dport 80 accept", table, StringComparison.Ordinal);
        Assert.Contains($"ip daddr {web1} ct state established,related accept", table, StringComparison.Ordinal);
        Assert.Contains($"ip daddr {web1} drop", table, StringComparison.Ordinal);
        Assert.Contains("ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001", table, StringComparison.Ordinal);
        Assert.Contains("ip saddr 127.0.0.11 ip daddr 127.0.0.11 tcp sport 40002 snat to :53", table, StringComparison.Ordinal);

        // A restarted daemon (a new writer) reads the ports back from the table; the trace sees the rules' iptables form.
        var restarted = new TaskRulesWriter(iptables, new NfTablesExecutor(), true, _runner, NullLogger<TaskRulesWriter>.Instance);
        offered = null;
        Assert.False(await ConvergeTaskAsync(restarted, task, service, p => offered = p));
        Assert.Equal(new DnsPorts(40001, 40002), offered);
        Assert.Contains($"-A MESH-TASK-INPUT -d {web1}/32 -p tcp -m tcp --dport 80 -j ACCEPT", await restarted.ReadForTraceAsync(Netns, ["nat", "filter"], CancellationToken.None), StringComparison.Ordinal);

        // The service stops publishing and the DNS goes: the table goes.
        Assert.True(await ConvergeTaskAsync(restarted, task, service with { Ports = [] }, _ => null));
        Assert.DoesNotContain(TaskIngressTable.Name, await NftAsync("list", "tables"), StringComparison.Ordinal);
    }
}
