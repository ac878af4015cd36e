using System.Collections.Frozen;
using System.Text.Json;
using System.Text.Json.Serialization;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Overlay;
using Mesh.Ingress.Planning;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Tests.Planning;

/// <summary>
/// The node's plan as a value: built from the state alone (no executor, no kernel: these tests run unprivileged and
/// name namespaces that do not exist), exactly the objects each namespace should hold, and equal for an equal input.
/// </summary>
public sealed class NodePlannerTests
{
    private static readonly NetworkNamespacePath Host = new("/nonexistent/host-ns");

    /// <summary>
    /// n1 runs web.1 (a namespace, a resolv.conf) and web.3 (no namespace: nothing to converge for it); web.2 runs on n2.
    /// web publishes 8080 on the ingress network and has a VIP on appnet; local publishes 9000 in host mode.
    /// </summary>
    private static ClusterState State()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.RegisterNode(state, new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" }).State;
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [PublishedPort.Parse("8080:80")], Networks = ["appnet"] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "local", Ports = [PublishedPort.Parse("9000:90") with { Mode = PublishMode.Host }] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "web.1", Service = "web", Node = "n1", NetnsPath = "/run/netns/t1", ResolvConfPath = "/var/lib/mesh/t1/resolv.conf" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "web.2", Service = "web", Node = "n2", NetnsPath = "/run/netns/t2" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "web.3", Service = "web", Node = "n1" }).State;
        return StateTransitions.AddTask(state, new TaskSpec { Name = "local.1", Service = "local", Node = "n1", NetnsPath = "/run/netns/l1" }).State;
    }

    private static NodePlanner Planner(bool nftables) => new(nftables, new NodeNetworkOptions { IngressSandbox = "sbx" }, new IpvsOptions(), Host);

    private static ClusterNode N1(ClusterState state) => state.Nodes.Single(n => n.Name == "n1");

    private static string Ingress(ClusterState state, string task) => state.Tasks.Single(t => t.Name == task).Addresses[OverlayNetwork.IngressName];

    [Fact]
    public void The_nftables_plan_of_a_small_state_names_each_namespace_and_holds_exactly_its_objects()
    {
        var state = State();
        var dns = new Dictionary<string, DnsPorts> { ["web.1"] = new(41000, 42000) };

        var plan = Planner(nftables: true).Plan(state, N1(state), null, dns);

        // The host: the nat table (and its iptables form, for FORWARD accepts where iptables may drop).
        Assert.Equal(Host, plan.Host.Netns);
        Assert.Equal(HostNatTable.Build(state, new NodeNetworkOptions { IngressSandbox = "sbx" }, "n1").Skeleton, plan.Host.NatTable!.Skeleton);
        Assert.Contains(plan.Host.NatTable.Chains.SelectMany(c => c.Rules), r => r.Text == "tcp dport 8080 dnat to 172.18.0.2:8080");
        Assert.Contains(plan.Host.Rules.Chains, c => c.Name == "MESH-INGRESS");

        // The sandbox: its table, no IPVS; every task's ingress address (for the neighbours of those that come or go).
        Assert.Equal(NetworkNamespacePath.Named("sbx"), plan.Sandbox.Netns);
        Assert.Equal(IngressSandboxTable.Name, plan.Sandbox.Backends.Table!.Name);
        Assert.Empty(plan.Sandbox.Backends.Services);
        Assert.Equal(IptablesRuleset.Empty, plan.Sandbox.Backends.Marks);
        Assert.Equal(new[] { "web.1", "web.2", "web.3", "local.1" }.Select(t => Ingress(state, t)).Order(StringComparer.Ordinal), plan.Sandbox.TaskAddresses.Order(StringComparer.Ordinal));

        // The local tasks with a namespace, in the store's order: not web.2 (n2), not web.3 (no namespace).
        Assert.Equal(["web.1", "local.1"], plan.Tasks.Select(t => t.Task));
        var web1 = plan.Tasks[0];
        Assert.Equal(new NetworkNamespacePath("/run/netns/t1"), web1.Netns);
        Assert.Equal(new DnsPorts(41000, 42000), web1.Ingress.Dns);
        Assert.Contains(web1.Ingress.Table!.BaseChains.SelectMany(c => c.Rules), r => r.Text == "ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:41000");
        Assert.Contains(web1.Ingress.Rules.Chains, c => c.Name == TaskRules.DnsOutput);
        Assert.Equal(TaskServiceTable.Name, web1.Vips.Table!.Name); // web has a VIP on appnet
        Assert.Equal("/var/lib/mesh/t1/resolv.conf", web1.ResolvConfPath);
        Assert.Null(web1.ReplyRoute);

        // local.1: no DNS ports bound (no DNS rules), no VIP network (no VIP table), host mode keeps the client's address.
        var local1 = plan.Tasks[1];
        Assert.Null(local1.Ingress.Dns);
        Assert.DoesNotContain(local1.Ingress.Rules.Chains, c => c.Name == TaskRules.DnsOutput);
        Assert.Same(BackendChoice.None, local1.Vips);
        Assert.Equal(new ReplyRoute(Ingress(state, "local.1"), N1(state).IngressSandboxIp), local1.ReplyRoute);
    }

    [Fact]
    public void The_ipvs_plan_holds_fwmark_services_marks_and_sysctls_instead_of_tables()
    {
        var state = State();
        var plan = Planner(nftables: false).Plan(state, N1(state), null, new Dictionary<string, DnsPorts>());

        Assert.Null(plan.Host.NatTable);
        Assert.Null(plan.Sandbox.Backends.Table);
        Assert.Equal(IpvsSandboxRules.Services(state, new IpvsOptions(), "n1").Select(s => s.Service), plan.Sandbox.Backends.Services.Select(s => s.Service));
        Assert.Equal(IpvsSandboxRules.Sysctls, plan.Sandbox.Backends.Sysctls);
        Assert.Contains(plan.Sandbox.Backends.Marks.Chains, c => c.Table == "mangle");

        var web1 = plan.Tasks.Single(t => t.Task == "web.1");
        Assert.Null(web1.Ingress.Table);
        Assert.Null(web1.Vips.Table);
        Assert.Single(web1.Vips.Services);
        Assert.Equal(IpvsTaskRules.Sysctls, web1.Vips.Sysctls);
        Assert.Contains(web1.Vips.Marks.Chains, c => c.Name == IpvsTaskRules.MarkVips);
        Assert.Same(BackendChoice.None, plan.Tasks.Single(t => t.Task == "local.1").Vips);
    }

    [Fact]
    public void The_overlay_plan_of_a_small_state_holds_exactly_the_carried_networks_and_the_remote_endpoints()
    {
        var state = State();
        var n1 = N1(state);
        var n2 = state.Nodes.Single(n => n.Name == "n2");
        var web1 = state.Tasks.Single(t => t.Name == "web.1");
        var web2 = state.Tasks.Single(t => t.Name == "web.2");

        var plan = Planner(nftables: true).Plan(state, n1, null, new Dictionary<string, DnsPorts>()).Overlay;

        // n1 sends from its advertise address; it carries ingress always and appnet (web.1 is on it), by VNI.
        Assert.Equal("198.18.0.11", plan.Local);
        Assert.Equal(
            [new OverlayLink("ingress", OverlayNetwork.Ingress.Vni, "mesh-ov-ingress", $"mesh-vx{OverlayNetwork.Ingress.Vni}"), new OverlayLink("appnet", 4097, "mesh-ov-appnet", "mesh-vx4097")],
            plan.Links);

        // The remote endpoints only, each at n2's VTEP with the MAC of its address: n2's sandbox and web.2 on ingress,
        // web.2 on appnet. Not n1's own tasks (web.1, web.3, local.1) nor its own sandbox: they are on the bridge.
        OverlayPeer Peer(int vni, string ip) => new($"mesh-vx{vni}", ip, "198.18.0.12");
        var ingress = OverlayNetwork.Ingress.Vni;
        Assert.Equal(
            new[] { Peer(ingress, n2.IngressSandboxIp), Peer(ingress, web2.Addresses[OverlayNetwork.IngressName]) }.OrderBy(p => p.Ip, StringComparer.Ordinal)
                .Append(Peer(4097, web2.Addresses["appnet"])),
            plan.Peers);
        Assert.DoesNotContain(plan.Peers, p => web1.Addresses.Values.Contains(p.Ip) || p.Ip == n1.IngressSandboxIp);

        // What a departed endpoint's address is checked against (DepartedPeers): every address of the state, local ones too.
        Assert.Contains(web1.Addresses["appnet"], plan.AddressesInUse);
        Assert.Contains(n1.IngressSandboxIp, plan.AddressesInUse);

        // The sandbox's links: its address on the ingress overlay.
        Assert.Equal(n1.IngressSandboxIp, Planner(nftables: false).PlanSandbox(state, n1, null).IngressAddress);
    }

    [Fact]
    public void The_overlay_plan_of_an_equal_input_is_equal_and_a_task_on_another_node_changes_only_its_peers()
    {
        var state = State();
        var plan = Planner(nftables: true).PlanOverlay(state, N1(state));
        var again = State();
        var replanned = Planner(nftables: false).PlanOverlay(again, N1(again));
        Assert.Equal(plan.Fingerprint, replanned.Fingerprint);
        Assert.Equal(plan.Links, replanned.Links);
        Assert.Equal(plan.Peers, replanned.Peers);

        var more = StateTransitions.AddTask(state, new TaskSpec { Name = "web.4", Service = "web", Node = "n2" }).State;
        var web4 = more.Tasks.Single(t => t.Name == "web.4").Addresses;
        var moved = Planner(nftables: true).PlanOverlay(more, N1(more));
        Assert.Equal(plan.Links, moved.Links);
        Assert.Equal(
            web4.Values.Order(StringComparer.Ordinal),
            moved.Peers.Except(plan.Peers).Select(p => p.Ip).Order(StringComparer.Ordinal));
        Assert.Empty(plan.Peers.Except(moved.Peers));
    }

    [Fact]
    public void An_equal_input_gives_an_equal_plan_and_a_change_only_the_namespaces_it_touches()
    {
        var dns = new Dictionary<string, DnsPorts> { ["web.1"] = new(41000, 42000) };
        var state = State();
        var first = Describe(Planner(nftables: true).Plan(state, N1(state), null, dns));

        // Another planner, a state decoded anew (equal, not the same objects): the same plan.
        var again = State();
        Assert.Equal(first, Describe(Planner(nftables: true).Plan(again, N1(again), null, dns)));

        // One planner pass after pass (its sandbox builder keeps the services' elements): the same plan again.
        var planner = Planner(nftables: true);
        planner.Plan(state, N1(state), null, dns);
        Assert.Equal(first, Describe(planner.Plan(state with { }, N1(state), null, dns)));

        // Other DNS ports: only that task's namespace differs.
        var moved = planner.Plan(state, N1(state), null, new Dictionary<string, DnsPorts> { ["web.1"] = new(41001, 42000) });
        var before = Planner(nftables: true).Plan(state, N1(state), null, dns);
        Assert.Equal(Describe(before.Host), Describe(moved.Host));
        Assert.Equal(Describe(before.Sandbox), Describe(moved.Sandbox));
        Assert.Equal(Describe(before.Tasks[1]), Describe(moved.Tasks[1]));
        Assert.NotEqual(Describe(before.Tasks[0]), Describe(moved.Tasks[0]));
    }

    [Fact]
    public void The_same_state_object_again_gives_the_last_plans_and_anything_else_plans_anew()
    {
        var dns = new Dictionary<string, DnsPorts> { ["web.1"] = new(41000, 42000) };
        var state = State();
        var planner = Planner(nftables: true);
        var first = planner.Plan(state, N1(state), null, dns);

        // A resync plans from the very same state object: the same plans, not made again.
        var resync = planner.Plan(state, N1(state), null, dns);
        Assert.Same(first.Host, resync.Host);
        Assert.Same(first.Overlay, resync.Overlay);
        Assert.Same(first.Sandbox, resync.Sandbox);

        // Other verdicts (a new snapshot): the host and sandbox planned anew; the overlays do not depend on them.
        var verdicts = planner.Plan(state, N1(state), new BackendHealth(FrozenSet<string>.Empty), dns);
        Assert.NotSame(first.Host, verdicts.Host);
        Assert.NotSame(first.Sandbox, verdicts.Sandbox);
        Assert.Same(first.Overlay, verdicts.Overlay);

        // An equal state that is another object: planned anew, and equal.
        var copy = planner.Plan(state with { }, N1(state), null, dns);
        Assert.NotSame(first.Host, copy.Host);
        Assert.NotSame(first.Overlay, copy.Overlay);
        Assert.NotSame(first.Sandbox, copy.Sandbox);
        Assert.Equal(Describe(first), Describe(copy));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Local_tasks_on_the_same_networks_share_one_east_west_choice_equal_to_each_ones_own(bool nftables)
    {
        var state = State();
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "dbnet", Subnet = "10.0.2.0/24", Vni = 4098 }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "db", Networks = ["dbnet"] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Networks = ["appnet", "dbnet"] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "web.4", Service = "web", Node = "n1", NetnsPath = "/run/netns/t4" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "db.1", Service = "db", Node = "n2", NetnsPath = "/run/netns/d1" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Name = "api.1", Service = "api", Node = "n1", NetnsPath = "/run/netns/a1" }).State;
        var planner = Planner(nftables);

        var tasks = planner.PlanTasks(state, "n1", new Dictionary<string, DnsPorts>()).ToDictionary(t => t.Task);

        // web.1 and web.4 are both on appnet only: one choice made once; api.1 (appnet and dbnet) has its own.
        Assert.Equal(["web.1", "local.1", "web.4", "api.1"], tasks.Keys);
        Assert.Same(tasks["web.1"].Vips, tasks["web.4"].Vips);
        Assert.NotSame(tasks["web.1"].Vips, tasks["api.1"].Vips);
        Assert.NotEqual(Describe(tasks["web.1"].Vips), Describe(tasks["api.1"].Vips)); // api.1 also reaches db's VIP
        foreach (var (name, plan) in tasks)
        {
            Assert.Equal(Describe(planner.TaskVips(state, state.Tasks.Single(t => t.Name == name))), Describe(plan.Vips));
        }
    }

    /// <summary>A plan's whole content (records hold lists, which compare by reference): its JSON, tuples and nft data's bytes included.</summary>
    private static string Describe(object plan) => JsonSerializer.Serialize(plan, plan.GetType(), Json);

    private static readonly JsonSerializerOptions Json = new() { IncludeFields = true, Converters = { new NftDataBytes(), new AddressText() } };

    /// <summary>An IPv4 <see cref="System.Net.IPAddress"/> as its text (its ScopeId property throws for IPv4).</summary>
    private sealed class AddressText : JsonConverter<System.Net.IPAddress>
    {
        public override System.Net.IPAddress Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException("plans are only described");

        public override void Write(Utf8JsonWriter writer, System.Net.IPAddress value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }

    private sealed class NftDataBytes : JsonConverter<NftData>
    {
        public override NftData Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => throw new NotSupportedException("plans are only described");

        public override void Write(Utf8JsonWriter writer, NftData value, JsonSerializerOptions options) => writer.WriteStringValue(Convert.ToHexString(value.Span));
    }
}
