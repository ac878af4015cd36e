using Mesh.Discovery.Model;
using Mesh.Ingress.Overlay;

namespace Mesh.Ingress.Tests.Overlay;

/// <summary>The overlay planner (cluster state → this node's links and peers) and its diff against the kernel (→ exactly the changes).</summary>
public class OverlayPlannerTests
{
    private static readonly OverlayNetwork AppNet = new("appnet", "10.0.1.0/24", 4097);

    private static ClusterState State(params ServiceTask[] tasks) => new()
    {
        Networks = [OverlayNetwork.Ingress, AppNet],
        Nodes =
        [
            new ClusterNode { Name = "n1", AdvertiseAddress = "198.18.0.11", IngressSandboxIp = "10.255.0.2" },
            new ClusterNode { Name = "n2", AdvertiseAddress = "198.18.0.12", IngressSandboxIp = "10.255.0.3" },
            new ClusterNode { Name = "n3", AdvertiseAddress = "198.18.0.13", IngressSandboxIp = "10.255.0.4" },
        ],
        Tasks = tasks,
    };

    private static ServiceTask Task(string name, string node, string ingress, string? app = null, TaskState state = TaskState.Running) => new()
    {
        Name = name,
        Service = name.Split('.')[0],
        Node = node,
        State = state,
        Addresses = app is null ? new Dictionary<string, string> { ["ingress"] = ingress } : new Dictionary<string, string> { ["ingress"] = ingress, ["appnet"] = app },
    };

    private static OverlayPlan Plan(ClusterState state, string node = "n3") =>
        OverlayPlanner.Plan(state, node, "198.18.0.1" + node[1..], "mesh-ov-ingress");

    private static readonly Mesh.Ingress.Overlay.Underlay Eth0 = new("eth0", 1500);

    [Fact]
    public void The_fingerprint_is_the_same_for_an_equal_plan_and_differs_when_any_peer_link_or_address_does()
    {
        var state = State(Task("web.1", "n1", "10.255.0.10", "10.0.1.10"), Task("web.2", "n2", "10.255.0.11"));
        var plan = Plan(state);
        Assert.Equal(plan.Fingerprint, Plan(state).Fingerprint);
        Assert.Equal(64, plan.Fingerprint.Length); // a SHA-256, whatever the number of peers

        var peer = plan.Peers[0];
        string[] others =
        [
            (plan with { Peers = [peer with { Vtep = "198.18.0.19" }, .. plan.Peers.Skip(1)] }).Fingerprint,
            (plan with { Peers = [peer with { Ip = "10.255.0.99" }, .. plan.Peers.Skip(1)] }).Fingerprint, // and with it the MAC
            (plan with { Peers = plan.Peers.Skip(1).ToArray() }).Fingerprint,
            (plan with { Links = [plan.Links[0] with { Vni = 4098 }, .. plan.Links.Skip(1)] }).Fingerprint,
            (plan with { Local = "198.18.0.99" }).Fingerprint,
        ];
        Assert.Equal(others.Length, others.Append(plan.Fingerprint).Distinct().Count() - 1);
    }

    private static OverlayKernelState Kernel(string links, Dictionary<string, string>? fdb = null, Dictionary<string, string>? neigh = null) => new(
        IpJson.Links(links),
        (fdb ?? []).ToDictionary(p => p.Key, p => IpJson.Fdb(p.Value)),
        (neigh ?? []).ToDictionary(p => p.Key, p => IpJson.Neighbours(p.Value)));

    private const string Underlay = """{"ifname":"eth0","flags":["UP"],"mtu":1500,"addr_info":[{"family":"inet","local":"198.18.0.13","prefixlen":24}]}""";

    private static string Vxlan(string name, int vni, string master = "mesh-ov-ingress", bool learning = false, string local = "198.18.0.13") =>
        $$$$"""{"ifname":"{{{{name}}}}","flags":["BROADCAST","UP"],"mtu":1450,"master":"{{{{master}}}}","linkinfo":{"info_kind":"vxlan","info_data":{"id":{{{{vni}}}},"local":"{{{{local}}}}","link":"eth0","port":4789,"learning":{{{{(learning ? "true" : "false")}}}},"proxy":true}}}""";

    private static string Bridge(string name) => $$$"""{"ifname":"{{{name}}}","flags":["UP"],"mtu":1450,"linkinfo":{"info_kind":"bridge"}}""";

    [Fact]
    public void A_node_carries_ingress_always_and_a_network_only_with_a_task_of_its_own_there()
    {
        var state = State(Task("web.1", "n1", "10.255.0.5", "10.0.1.5"));
        Assert.Equal(["ingress"], Plan(state).Links.Select(l => l.Network));
        Assert.Equal(["ingress", "appnet"], Plan(state, "n1").Links.Select(l => l.Network));

        var ingress = Plan(state).Links[0];
        Assert.Equal(new OverlayLink("ingress", 4096, "mesh-ov-ingress", "mesh-vx4096"), ingress);
        Assert.Equal(new OverlayLink("appnet", 4097, "mesh-ov-appnet", "mesh-vx4097"), Plan(state, "n1").Links[1]);
    }

    [Fact]
    public void Every_remote_endpoint_is_a_peer_at_its_nodes_vtep_with_a_mac_from_its_address_and_local_ones_are_not()
    {
        var state = State(Task("web.1", "n1", "10.255.0.5", "10.0.1.5"), Task("web.2", "n2", "10.255.0.6", "10.0.1.6"), Task("web.3", "n3", "10.255.0.7", "10.0.1.7"));
        var peers = Plan(state).Peers.Select(p => $"{p.Vxlan} {p.Ip} {p.Mac} {p.Vtep}");
        Assert.Equal(
        [
            // The other nodes' ingress sandboxes too: IPVS's SNAT makes them the source the tasks answer.
            "mesh-vx4096 10.255.0.2 02:42:0a:ff:00:02 198.18.0.11",
            "mesh-vx4096 10.255.0.3 02:42:0a:ff:00:03 198.18.0.12",
            "mesh-vx4096 10.255.0.5 02:42:0a:ff:00:05 198.18.0.11",
            "mesh-vx4096 10.255.0.6 02:42:0a:ff:00:06 198.18.0.12",
            "mesh-vx4097 10.0.1.5 02:42:0a:00:01:05 198.18.0.11",
            "mesh-vx4097 10.0.1.6 02:42:0a:00:01:06 198.18.0.12",
        ], peers);
    }

    [Fact]
    public void A_node_that_is_down_or_gone_takes_its_endpoints_with_it_and_a_draining_task_stays()
    {
        var state = State(Task("web.1", "n1", "10.255.0.5", state: TaskState.NodeDown), Task("web.2", "n2", "10.255.0.6", state: TaskState.Draining), Task("web.9", "gone", "10.255.0.9"));
        Assert.Equal(["10.255.0.2", "10.255.0.3", "10.255.0.6"], Plan(state).Peers.Select(p => p.Ip));
        var withoutN2 = state with { Nodes = state.Nodes.Where(n => n.Name != "n2").ToList() };
        Assert.Equal(["10.255.0.2"], Plan(withoutN2).Peers.Select(p => p.Ip));
    }

    [Fact]
    public void Addresses_that_are_not_ipv4_are_ignored_not_planned()
    {
        var state = State(Task("web.1", "n1", "10.255.0.5; rm -rf /"), Task("web.2", "n2", "fe80::1"));
        Assert.Equal(["10.255.0.2", "10.255.0.3"], Plan(state).Peers.Select(p => p.Ip));
    }

    [Fact]
    public void A_bare_node_gets_its_bridge_and_vxlan_device_without_learning_with_arp_proxy_and_one_entry_pair_per_peer()
    {
        var plan = Plan(State(Task("web.1", "n1", "10.255.0.5")));
        var changes = OverlayDiff.Changes(plan, Eth0, Kernel($"[{Underlay}]")).Select(c => c.ToString());
        Assert.Equal(
        [
            "ip link add mesh-ov-ingress mtu 1450 type bridge",
            "sysctl -w net.ipv6.conf.mesh-ov-ingress.disable_ipv6=1",
            "ip link set mesh-ov-ingress up",
            "ip link add mesh-vx4096 mtu 1450 type vxlan id 4096 dstport 4789 local 198.18.0.13 dev eth0 nolearning proxy",
            "sysctl -w net.ipv6.conf.mesh-vx4096.disable_ipv6=1",
            "ip link set mesh-vx4096 master mesh-ov-ingress up",
            "bridge fdb replace 02:42:0a:ff:00:02 dev mesh-vx4096 dst 198.18.0.11 self permanent",
            "ip neigh replace 10.255.0.2 lladdr 02:42:0a:ff:00:02 dev mesh-vx4096 nud permanent",
            "bridge fdb replace 02:42:0a:ff:00:03 dev mesh-vx4096 dst 198.18.0.12 self permanent",
            "ip neigh replace 10.255.0.3 lladdr 02:42:0a:ff:00:03 dev mesh-vx4096 nud permanent",
            "bridge fdb replace 02:42:0a:ff:00:05 dev mesh-vx4096 dst 198.18.0.11 self permanent",
            "ip neigh replace 10.255.0.5 lladdr 02:42:0a:ff:00:05 dev mesh-vx4096 nud permanent",
        ], changes);
    }

    private static readonly Dictionary<string, string> ConvergedFdb = new()
    {
        ["mesh-vx4096"] = """
            [{"mac":"9a:cb:63:57:0a:82","flags":[],"master":"mesh-ov-ingress","state":"permanent"},
             {"mac":"02:42:0a:ff:00:02","dst":"198.18.0.11","flags":["self"],"state":"permanent"},
             {"mac":"02:42:0a:ff:00:03","dst":"198.18.0.12","flags":["self"],"state":"permanent"},
             {"mac":"02:42:0a:ff:00:05","dst":"198.18.0.11","flags":["self"],"state":"permanent"}]
            """,
    };

    private static readonly Dictionary<string, string> ConvergedNeigh = new()
    {
        ["mesh-vx4096"] = """
            [{"dst":"10.255.0.2","lladdr":"02:42:0a:ff:00:02","state":["PERMANENT"]},
             {"dst":"10.255.0.3","lladdr":"02:42:0a:ff:00:03","state":["PERMANENT"]},
             {"dst":"10.255.0.5","lladdr":"02:42:0a:ff:00:05","state":["PERMANENT"]}]
            """,
    };

    [Fact]
    public void A_converged_node_gets_no_change_at_all()
    {
        var plan = Plan(State(Task("web.1", "n1", "10.255.0.5")));
        var kernel = Kernel($"[{Underlay},{Bridge("mesh-ov-ingress")},{Vxlan("mesh-vx4096", 4096)}]", ConvergedFdb, ConvergedNeigh);
        Assert.Empty(OverlayDiff.Changes(plan, Eth0, kernel));
    }

    [Fact]
    public void An_overlay_link_with_ipv6_turned_on_gets_it_off_again_and_only_mesh_links_are_looked_at()
    {
        var plan = Plan(State(Task("web.1", "n1", "10.255.0.5")));
        var converged = Kernel($"[{Underlay},{Bridge("mesh-ov-ingress")},{Vxlan("mesh-vx4096", 4096)},{Bridge("docker0")}]", ConvergedFdb, ConvergedNeigh);
        var on = converged with
        {
            Links = converged.Links.ToDictionary(l => l.Key, l => l.Value with { Ipv6 = l.Key != "eth0" }),
        };
        Assert.Equal(
            ["sysctl -w net.ipv6.conf.mesh-ov-ingress.disable_ipv6=1", "sysctl -w net.ipv6.conf.mesh-vx4096.disable_ipv6=1"],
            OverlayDiff.Changes(plan, Eth0, on).Select(c => c.ToString()));

        // Off already, or a kernel without IPv6 (nothing read): nothing to do.
        var off = converged with { Links = converged.Links.ToDictionary(l => l.Key, l => l.Value with { Ipv6 = false }) };
        Assert.Empty(OverlayDiff.Changes(plan, Eth0, off));
    }

    [Fact]
    public void A_task_that_went_loses_exactly_its_two_entries_and_one_that_came_gets_exactly_two()
    {
        var kernel = Kernel($"[{Underlay},{Bridge("mesh-ov-ingress")},{Vxlan("mesh-vx4096", 4096)}]", ConvergedFdb, ConvergedNeigh);
        var gone = OverlayDiff.Changes(Plan(State()), Eth0, kernel);
        Assert.Equal(
        [
            "bridge fdb del 02:42:0a:ff:00:05 dev mesh-vx4096 dst 198.18.0.11 self",
            "ip neigh del 10.255.0.5 dev mesh-vx4096",
        ], gone.Select(c => c.ToString()));
        Assert.All(gone, c => Assert.True(c.Deferred));

        Assert.Equal(
        [
            "bridge fdb replace 02:42:0a:ff:00:06 dev mesh-vx4096 dst 198.18.0.12 self permanent",
            "ip neigh replace 10.255.0.6 lladdr 02:42:0a:ff:00:06 dev mesh-vx4096 nud permanent",
        ], OverlayDiff.Changes(Plan(State(Task("web.1", "n1", "10.255.0.5"), Task("web.2", "n2", "10.255.0.6"))), Eth0, kernel).Select(c => c.ToString()));
    }

    [Fact]
    public void Flood_entries_a_moved_vtep_a_learned_entry_and_a_wrong_neighbour_are_repaired()
    {
        var fdb = new Dictionary<string, string>
        {
            ["mesh-vx4096"] = """
                [{"mac":"00:00:00:00:00:00","dst":"198.18.0.11","flags":["self"],"state":"permanent"},
                 {"mac":"00:00:00:00:00:00","dst":"198.18.0.12","flags":["self"],"state":"permanent"},
                 {"mac":"02:42:0a:ff:00:02","dst":"198.18.0.11","flags":["self"],"state":"permanent"},
                 {"mac":"02:42:0a:ff:00:03","dst":"198.18.0.12","flags":["self"]},
                 {"mac":"02:42:0a:ff:00:05","dst":"198.18.0.12","flags":["self"],"state":"permanent"}]
                """,
        };
        var neigh = new Dictionary<string, string>
        {
            ["mesh-vx4096"] = """
                [{"dst":"10.255.0.2","lladdr":"02:42:0a:ff:00:02","state":["PERMANENT"]},
                 {"dst":"10.255.0.3","lladdr":"02:42:0a:ff:00:03","state":["REACHABLE"]},
                 {"dst":"10.255.0.5","lladdr":"aa:bb:cc:dd:ee:ff","state":["PERMANENT"]},
                 {"dst":"10.255.0.99","state":["FAILED"]}]
                """,
        };
        var kernel = Kernel($"[{Underlay},{Bridge("mesh-ov-ingress")},{Vxlan("mesh-vx4096", 4096)}]", fdb, neigh);
        var changes = OverlayDiff.Changes(Plan(State(Task("web.1", "n1", "10.255.0.5"))), Eth0, kernel);
        Assert.Equal(
        [
            "bridge fdb del 02:42:0a:ff:00:05 dev mesh-vx4096 dst 198.18.0.12 self",
            "bridge fdb replace 02:42:0a:ff:00:03 dev mesh-vx4096 dst 198.18.0.12 self permanent",
            "ip neigh replace 10.255.0.3 lladdr 02:42:0a:ff:00:03 dev mesh-vx4096 nud permanent",
            "bridge fdb replace 02:42:0a:ff:00:05 dev mesh-vx4096 dst 198.18.0.11 self permanent",
            "ip neigh replace 10.255.0.5 lladdr 02:42:0a:ff:00:05 dev mesh-vx4096 nud permanent",
            // What nothing wants goes at the end of the pass, after the dataplane stopped sending there.
            "bridge fdb del 00:00:00:00:00:00 dev mesh-vx4096 dst 198.18.0.11 self",
            "bridge fdb del 00:00:00:00:00:00 dev mesh-vx4096 dst 198.18.0.12 self",
            "ip neigh del 10.255.0.99 dev mesh-vx4096",
        ], changes.Select(c => c.ToString()));
        Assert.Equal([false, false, false, false, false, true, true, true], changes.Select(c => c.Deferred));
    }

    [Fact]
    public void A_learning_vxlan_device_is_made_again_and_refilled_and_a_network_left_is_removed_but_nobody_elses_links()
    {
        var links = $"[{Underlay},{Bridge("mesh-ov-ingress")},{Vxlan("mesh-vx4096", 4096, learning: true)},{Bridge("mesh-ov-appnet")},{Vxlan("mesh-vx4097", 4097, master: "mesh-ov-appnet")},{Bridge("docker0")},{Vxlan("flannel.1", 1)}]";
        var changes = OverlayDiff.Changes(Plan(State()), Eth0, Kernel(links, ConvergedFdb, ConvergedNeigh)).Select(c => c.ToString());
        Assert.Equal(
        [
            "ip link del mesh-vx4096",
            "ip link add mesh-vx4096 mtu 1450 type vxlan id 4096 dstport 4789 local 198.18.0.13 dev eth0 nolearning proxy",
            "sysctl -w net.ipv6.conf.mesh-vx4096.disable_ipv6=1",
            "ip link set mesh-vx4096 master mesh-ov-ingress up",
            "bridge fdb replace 02:42:0a:ff:00:02 dev mesh-vx4096 dst 198.18.0.11 self permanent",
            "ip neigh replace 10.255.0.2 lladdr 02:42:0a:ff:00:02 dev mesh-vx4096 nud permanent",
            "bridge fdb replace 02:42:0a:ff:00:03 dev mesh-vx4096 dst 198.18.0.12 self permanent",
            "ip neigh replace 10.255.0.3 lladdr 02:42:0a:ff:00:03 dev mesh-vx4096 nud permanent",
            "ip link del mesh-vx4097",
            "ip link del mesh-ov-appnet",
        ], changes);
    }

    [Fact]
    public void A_link_of_another_kind_under_an_overlays_bridge_name_is_refused_with_its_name()
    {
        var links = $$$"""[{{{Underlay}}},{"ifname":"mesh-ov-ingress","flags":["UP"],"mtu":1500,"linkinfo":{"info_kind":"veth"}}]""";
        var e = Assert.Throws<InvalidOperationException>(() => OverlayDiff.Changes(Plan(State()), Eth0, Kernel(links)));
        Assert.Contains("'mesh-ov-ingress' (network ingress) exists but is a veth link", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_underlay_holds_the_advertise_address_the_mtu_is_its_less_50_and_the_mac_follows_the_address()
    {
        var jumbo = new Mesh.Ingress.Overlay.Underlay("eth0", 9000);
        Assert.Equal(8950, jumbo.OverlayMtu);
        Assert.Contains(new AddBridge("mesh-ov-ingress", 8950), OverlayDiff.Changes(Plan(State()), jumbo, Kernel($"[{Underlay}]")));
        Assert.Equal(Eth0, Mesh.Ingress.Overlay.Underlay.Find(Kernel($"[{Underlay}]"), "198.18.0.13"));
        Assert.Contains("198.18.0.99 is on no interface", Assert.Throws<InvalidOperationException>(() => Mesh.Ingress.Overlay.Underlay.Find(Kernel($"[{Underlay}]"), "198.18.0.99")).Message, StringComparison.Ordinal);
        Assert.Equal("02:42:c0:a8:01:fe", OverlayNames.Mac("192.168.1.254"));
        Assert.Throws<ArgumentException>(() => OverlayNames.Mac("fe80::1"));
    }
}
