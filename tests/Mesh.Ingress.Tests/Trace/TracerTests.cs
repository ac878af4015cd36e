using Mesh.Discovery.Model;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Tests.Trace;

/// <summary>
/// The trace logic on kernel state captured from a real 3-node lab (Data/: <c>nft -j list table ip mesh</c> of node 3's
/// sandbox, node 3's <c>iptables-save -t nat</c>/<c>-t filter</c>, <c>iptables-save</c> in task web.1; and a sandbox table
/// written by nft in a scratch namespace with a service that has no backends).
/// </summary>
public sealed class TracerTests
{
    private static string Data(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Trace", "Data", name));

    private static readonly Dictionary<string, TracedTask> LabTasks = new()
    {
        ["10.255.0.6"] = new("web.1", "web", "mesh-n1"),
        ["10.255.0.7"] = new("web.2", "web", "mesh-n2"),
        ["10.255.0.8"] = new("web.3", "web", "mesh-n1"),
    };

    private static NodeSnapshot Node3(string? sandbox = null, string dataplane = "nftables") => new(
        "mesh-n3",
        dataplane,
        "mesh-n3-ingress",
        "mesh-gwbridge",
        new HashSet<string> { "127.0.0.1", "198.18.0.13", "172.18.0.1" },
        new HashSet<(string, int)>(),
        Data("host-nat.txt"),
        Data("host-filter.txt"),
        sandbox ?? Data("sandbox.json"),
        LabTasks,
        new Dictionary<string, string>());

    /// <summary>Node 1 runs web.1 and web.3: its trace reads their rules (web.3's are web.1's with its address).</summary>
    private static NodeSnapshot Node1() => Node3() with
    {
        Node = "mesh-n1",
        LocalAddresses = new HashSet<string> { "127.0.0.1", "198.18.0.11", "172.18.0.1" },
        LocalTaskRules = new Dictionary<string, string>
        {
            ["10.255.0.6"] = Data("task-web.1.txt"),
            ["10.255.0.8"] = Data("task-web.1.txt").Replace("10.255.0.6", "10.255.0.8", StringComparison.Ordinal),
        },
    };

    private static TraceResult Run(NodeSnapshot kernel, string proto, string addr, int port, string? from = "198.18.0.100") =>
        Tracer.Trace(TraceRequest.Parse(proto, addr, port.ToString(System.Globalization.CultureInfo.InvariantCulture), from), kernel);

    [Fact]
    public void A_published_port_walks_host_dnat_forward_mark_dispatch_and_lists_every_backend_with_its_node()
    {
        var trace = Run(Node3(), "tcp", "198.18.0.13", 8080);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.Equal(
            [("nat", "PREROUTING"), ("nat", "MESH-INGRESS"), ("filter", "MESH-INGRESS"), ("ip mesh", "mark-published"), ("ip mesh", "dispatch"), ("ip mesh", "pick-rr-3"), ("ip mesh", "source-nat")],
            trace.Steps.Select(s => (s.Table, s.Chain)));
        Assert.Equal("-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", trace.Steps[1].Rule);
        Assert.Equal("@published-ports: tcp . 8080 : 0x00000100", trace.Steps[3].Rule);
        Assert.Equal("@port-chains: 0x00000100 . tcp . 8080 : goto pick-rr-3", trace.Steps[4].Rule);
        Assert.Equal("goto pick-rr-3", trace.Steps[4].Result);
        Assert.StartsWith("dnat ip addr . port to meta l4proto . th dport . numgen inc mod 3 map @backends; @backends { tcp . 8080 . 0 : 10.255.0.6 . 80, tcp . 8080 . 1 : 10.255.0.7 . 80, tcp . 8080 . 2 : 10.255.0.8 . 80 }", trace.Steps[5].Rule, StringComparison.Ordinal);
        Assert.Contains("snat to 10.255.0.4", trace.Steps[6].Rule, StringComparison.Ordinal);

        var set = trace.Backends!;
        Assert.Equal("web", set.Service);
        Assert.Equal("0x00000100", set.Mark);
        Assert.StartsWith("round robin", set.Selection, StringComparison.Ordinal);
        Assert.Equal(
            [("10.255.0.6", 80, "web.1", "mesh-n1"), ("10.255.0.7", 80, "web.2", "mesh-n2"), ("10.255.0.8", 80, "web.3", "mesh-n1")],
            set.Candidates.Select(c => (c.Address, c.Port, c.Task!, c.Node!)));
        Assert.All(set.Candidates, c => Assert.Equal(1, c.Weight));
        Assert.All(set.Candidates, c => Assert.Null(c.Health));
        Assert.All(set.Candidates, c => Assert.Null(c.TaskSide)); // node 3 runs none of them
        Assert.Equal("mesh trace --node mesh-n1 tcp 10.255.0.6:80", set.Candidates[0].FollowUp);
    }

    [Fact]
    public void A_maglev_rule_is_traced_by_the_client_address_and_names_the_backend_its_jhash_picks()
    {
        // The lab's table with web's rules as --lb maglev writes them (jhash of the source over the same map).
        var sandbox = Data("sandbox.json").Replace(
            "{\"numgen\": {\"mode\": \"inc\", \"mod\": 3, \"offset\": 0}}",
            "{\"jhash\": {\"mod\": 3, \"seed\": 1296388936, \"expr\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"}}}}",
            StringComparison.Ordinal);
        var trace = Run(Node3(sandbox), "tcp", "198.18.0.13", 8080);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.StartsWith("dnat ip addr . port to meta l4proto . th dport . jhash ip saddr mod 3 seed 0x4d455348 map @backends; @backends { tcp . 8080 . 0 : 10.255.0.6 . 80", trace.Steps[5].Rule, StringComparison.Ordinal);
        Assert.StartsWith("by the client's address", trace.Backends!.Selection, StringComparison.Ordinal);
        var bucket = Mesh.Ingress.Balancing.NftJhash.Bucket(System.Net.IPAddress.Parse("198.18.0.100"), 3, 0x4d455348);
        var expected = new[] { "10.255.0.6", "10.255.0.7", "10.255.0.8" }[bucket];
        Assert.Contains(trace.Notes, n => n.StartsWith($"maglev: jhash of 198.18.0.100 is bucket {bucket}, so 198.18.0.100 goes to {expected}:80", StringComparison.Ordinal));
        Assert.Contains("by the client's address", trace.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void On_the_node_running_tasks_the_far_side_is_read_from_each_local_task_and_the_remote_one_is_a_follow_up()
    {
        var trace = Run(Node1(), "udp", "198.18.0.11", 8080);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        var web1 = trace.Backends!.Candidates.Single(c => c.Task == "web.1");
        var side = Assert.Single(web1.TaskSide!);
        Assert.Equal(("task web.1 on mesh-n1", "filter", "MESH-TASK-INPUT"), (side.Namespace, side.Table, side.Chain));
        Assert.Equal("-d 10.255.0.6/32 -p udp -m udp --dport 80 -j ACCEPT", side.Rule);
        Assert.Null(trace.Backends.Candidates.Single(c => c.Task == "web.2").TaskSide);
        Assert.NotNull(trace.Backends.Candidates.Single(c => c.Task == "web.3").TaskSide);
    }

    [Fact]
    public void A_local_task_address_traces_the_far_side_a_target_port_is_accepted_any_other_dropped()
    {
        var accepted = Run(Node1(), "tcp", "10.255.0.6", 80, "10.255.0.4");
        Assert.Equal(TraceVerdict.Forwarded, accepted.Verdict);
        Assert.Contains("web.1", accepted.Reason, StringComparison.Ordinal);

        // The ipvs dataplane keeps the published port: the task REDIRECTs it to the target first.
        var redirected = Run(Node1(), "tcp", "10.255.0.6", 8080, "10.255.0.4");
        Assert.Equal(TraceVerdict.Forwarded, redirected.Verdict);
        Assert.Equal("REDIRECT to port 80", redirected.Steps[0].Result);

        var dropped = Run(Node1(), "tcp", "10.255.0.6", 81, "10.255.0.4");
        Assert.Equal(TraceVerdict.Dropped, dropped.Verdict);
        Assert.Equal("-d 10.255.0.6/32 -j DROP", dropped.Steps.Last().Rule);
    }

    [Fact]
    public void A_port_nobody_publishes_is_refused_on_the_node_unless_a_local_process_listens()
    {
        var trace = Run(Node3(), "tcp", "198.18.0.13", 9999);
        Assert.Equal(TraceVerdict.Refused, trace.Verdict);
        Assert.Contains("not published", trace.Reason, StringComparison.Ordinal);
        Assert.Equal("-j RETURN", trace.Steps.Last().Rule);
        Assert.Null(trace.Backends);

        var listening = Run(Node3() with { LocalListeners = new HashSet<(string, int)> { ("tcp", 9999) } }, "tcp", "198.18.0.13", 9999);
        Assert.Equal(TraceVerdict.NotMesh, listening.Verdict);
    }

    [Fact]
    public void An_address_that_is_not_the_nodes_is_not_the_meshs()
    {
        var trace = Run(Node3(), "tcp", "198.18.0.12", 8080);
        Assert.Equal(TraceVerdict.NotMesh, trace.Verdict);
        Assert.Contains("not an address of mesh-n3", trace.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_service_without_backends_is_refused_in_the_sandbox_and_a_one_task_service_has_one_candidate()
    {
        var kernel = Node3(Data("sandbox-no-backends.json"));
        var none = Run(kernel, "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, none.Verdict);
        Assert.Contains("the service of mark 0x00000100 has no backends for tcp/8080", none.Reason, StringComparison.Ordinal);
        Assert.Equal(("dispatch", "no element 0x00000100 . tcp . 8080 in @port-chains: no backend to pick"), (none.Steps.Last().Chain, none.Steps.Last().Result));

        // The host has no rule for 9000 in this capture: add one, as the daemon would for a second service.
        var nat = kernel.HostNat.Replace("-A MESH-INGRESS -j RETURN", "-A MESH-INGRESS -p tcp -m tcp --dport 9000 -j DNAT --to-destination 172.18.0.2:9000\n-A MESH-INGRESS -j RETURN", StringComparison.Ordinal);
        var filter = kernel.HostFilter.Replace("-A MESH-INGRESS -j RETURN", "-A MESH-INGRESS -p tcp -m tcp --dport 9000 -j ACCEPT\n-A MESH-INGRESS -j RETURN", StringComparison.Ordinal);
        var one = Run(kernel with { HostNat = nat, HostFilter = filter, Tasks = new Dictionary<string, TracedTask>() }, "tcp", "198.18.0.13", 9000);
        Assert.Equal(TraceVerdict.Forwarded, one.Verdict);
        // The sandbox names no service (its elements are keyed by port): the trace names it by a task the store knows, else by its mark.
        Assert.Equal(("with mark 0x00000101", "10.255.0.9", 90), (one.Backends!.Service, one.Backends.Candidates.Single().Address, one.Backends.Candidates.Single().Port));
        Assert.Contains(one.Notes, n => n.Contains("no task the store knows", StringComparison.Ordinal));
    }

    [Fact]
    public void A_locally_sourced_connection_takes_nat_output_and_is_masqueraded()
    {
        var trace = Run(Node3(), "tcp", "127.0.0.1", 8080, "127.0.0.1");
        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.Equal("OUTPUT", trace.Steps[0].Chain);
        var masquerade = trace.Steps.Single(s => s.Chain == "MESH-POSTROUTING");
        Assert.Equal("-o mesh-gwbridge -m addrtype --src-type LOCAL -j MASQUERADE", masquerade.Rule);
        Assert.DoesNotContain(trace.Steps, s => s.Table == "filter");
    }

    [Fact]
    public void Forward_with_policy_drop_and_no_accept_rule_is_dropped_on_the_host()
    {
        var filter = string.Join('\n', Data("host-filter.txt").Split('\n').Where(l => !l.Contains("-j ACCEPT", StringComparison.Ordinal)))
            .Replace(":FORWARD ACCEPT", ":FORWARD DROP", StringComparison.Ordinal);
        var trace = Run(Node3() with { HostFilter = filter }, "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Dropped, trace.Verdict);
        Assert.Equal(":FORWARD DROP", trace.Steps.Last().Rule);
    }

    [Fact]
    public void A_missing_sandbox_table_or_mark_is_refused_there()
    {
        Assert.Equal(TraceVerdict.Refused, Tracer.Trace(TraceRequest.Parse("tcp", "198.18.0.13", "8080", null), Node3() with { SandboxNft = null }).Verdict);

        // The host still DNATs udp/8080 but the sandbox lost its mark: the two disagree, and the trace says where.
        var sandbox = Data("sandbox.json").Replace("{\"concat\": [\"udp\", 8080]}", "{\"concat\": [\"udp\", 8081]}", StringComparison.Ordinal);
        Assert.NotEqual(Data("sandbox.json"), sandbox);
        var trace = Run(Node3(sandbox), "udp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, trace.Verdict);
        Assert.Equal("mark-published", trace.Steps.Last().Chain);
    }

    [Fact]
    public void A_traffic_local_rule_is_shown_without_snat_and_says_the_client_address_is_kept()
    {
        // The port dispatched to the traffic=local picking chain as IngressSandboxTable writes it (nft -j's form, checked with nft 1.0.6).
        const string rule = "\"expr\": [{\"dnat\": ";
        const string keep = "\"expr\": [{\"mangle\": {\"key\": {\"meta\": {\"key\": \"mark\"}}, \"value\": {\"|\": [{\"meta\": {\"key\": \"mark\"}}, 16777216]}}}, {\"dnat\": ";
        var sandbox = Data("sandbox.json");
        Assert.Contains(rule, sandbox, StringComparison.Ordinal);
        var trace = Run(Node3(sandbox.Replace(rule, keep, StringComparison.Ordinal).Replace("pick-rr-3", "pick-rr-local-3", StringComparison.Ordinal)), "tcp", "198.18.0.13", 8080);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.Contains("meta mark set meta mark | 0x01000000 dnat", trace.Steps[5].Rule, StringComparison.Ordinal);
        Assert.Equal("meta mark & 0x01000000 != 0 return", trace.Steps[6].Rule);
        Assert.StartsWith("no SNAT (traffic=local)", trace.Steps[6].Result, StringComparison.Ordinal);
        Assert.Contains("client address kept (traffic=local)", trace.Reason, StringComparison.Ordinal);

        var cluster = Run(Node3(), "tcp", "198.18.0.13", 8080);
        Assert.Contains("snat to", cluster.Steps[6].Rule, StringComparison.Ordinal);
    }

    [Fact]
    public void A_host_mode_port_is_dnated_straight_to_the_local_tasks_with_no_sandbox_step()
    {
        // As HostRules writes mode=host on node 1 (web.1 and web.3 local), in iptables-save's canonical form.
        var nat = Data("host-nat.txt").Replace("-A MESH-INGRESS -j RETURN",
            "-A MESH-INGRESS -p tcp -m tcp --dport 8081 -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.255.0.6:80\n"
            + "-A MESH-INGRESS -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.255.0.8:80\n-A MESH-INGRESS -j RETURN", StringComparison.Ordinal);
        var filter = Data("host-filter.txt").Replace("-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT",
            "-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j ACCEPT\n-A MESH-INGRESS -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8081 -j ACCEPT", StringComparison.Ordinal);
        Assert.Contains("8081", nat, StringComparison.Ordinal);
        Assert.Contains("8081", filter, StringComparison.Ordinal);
        var trace = Run(Node1() with { HostNat = nat, HostFilter = filter }, "tcp", "198.18.0.11", 8081);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.DoesNotContain(trace.Steps, s => s.Namespace.StartsWith("sandbox", StringComparison.Ordinal));
        Assert.Equal("-p tcp -m conntrack --ctstate DNAT --ctorigdstport 8081 -j ACCEPT", trace.Steps[^1].Rule);
        Assert.Equal([("10.255.0.6", 80, "web.1"), ("10.255.0.8", 80, "web.3")], trace.Backends!.Candidates.Select(c => (c.Address, c.Port, c.Task!)));
        Assert.All(trace.Backends.Candidates, c => Assert.NotNull(c.TaskSide));
        Assert.Contains("mode=host", trace.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(trace.Notes, n => n.Contains("not evaluated", StringComparison.Ordinal));
    }

    /// <summary>The ipvs sandbox as IpvsSandboxRules writes it (iptables-save's canonical form) with web's fwmark service.</summary>
    private const string IpvsMangle = """
        *mangle
        :PREROUTING ACCEPT [0:0]
        :INPUT ACCEPT [0:0]
        :MESH-INGRESS - [0:0]
        :MESH-INPUT - [0:0]
        -A PREROUTING -j MESH-INGRESS
        -A INPUT -j MESH-INPUT
        -A MESH-INGRESS -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff
        -A MESH-INGRESS -p udp -m udp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff
        -A MESH-INPUT -d 10.255.0.5/32 -j MARK --set-xmark 0x100/0xffffffff
        COMMIT
        """;

    private const string IpvsNat = """
        *nat
        :POSTROUTING ACCEPT [0:0]
        :MESH-POSTROUTING - [0:0]
        -A POSTROUTING -j MESH-POSTROUTING
        -A MESH-POSTROUTING -d 10.255.0.0/16 -m ipvs --ipvs -j SNAT --to-source 10.255.0.4
        COMMIT
        """;

    private static NodeSnapshot Ipvs(params IpvsRealServer[] servers) => Node3(null, "ipvs") with
    {
        SandboxNft = null,
        SandboxIpvs = new IpvsSandboxView(IpvsMangle, IpvsNat, [new IpvsVirtualService(0x100, "rr", servers)]),
    };

    private static IpvsRealServer Real(string address, int weight = 1) => new(address, 0, weight, "Masq", 0);

    [Fact]
    public void The_ipvs_dataplane_walks_mark_fwmark_service_and_snat_and_lists_the_real_servers_keeping_the_published_port()
    {
        var trace = Run(Ipvs(Real("10.255.0.6"), Real("10.255.0.7"), Real("10.255.0.8")), "tcp", "198.18.0.13", 8080);

        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        Assert.Equal(
            [("nat", "PREROUTING"), ("nat", "MESH-INGRESS"), ("filter", "MESH-INGRESS"), ("mangle", "MESH-INGRESS"), ("ipvs", "FWM 256 rr"), ("nat", "MESH-POSTROUTING")],
            trace.Steps.Select(s => (s.Table, s.Chain)));
        Assert.Equal("-p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff", trace.Steps[3].Rule);
        Assert.Equal("mark 0x00000100", trace.Steps[3].Result);
        Assert.Equal("-f 256 -s rr: 10.255.0.6:0 Masq w1, 10.255.0.7:0 Masq w1, 10.255.0.8:0 Masq w1", trace.Steps[4].Rule);
        Assert.Contains("SNAT to 10.255.0.4", trace.Steps[5].Result, StringComparison.Ordinal);

        var set = trace.Backends!;
        Assert.Equal("web", set.Service);
        Assert.StartsWith("round robin (IPVS rr)", set.Selection, StringComparison.Ordinal);
        Assert.Equal(
            [("10.255.0.6", 8080, "web.1", "mesh-n1"), ("10.255.0.7", 8080, "web.2", "mesh-n2"), ("10.255.0.8", 8080, "web.3", "mesh-n1")],
            set.Candidates.Select(c => (c.Address, c.Port, c.Task!, c.Node!)));
        Assert.Equal("mesh trace --node mesh-n2 tcp 10.255.0.7:8080", set.Candidates[1].FollowUp);
        Assert.Contains("IPVS sends it to one of 3 real servers of service web", trace.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void On_the_ipvs_dataplane_a_draining_real_server_gets_no_new_connection_and_none_left_is_refused()
    {
        var draining = Run(Ipvs(Real("10.255.0.6"), Real("10.255.0.7", weight: 0)), "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Forwarded, draining.Verdict);
        Assert.Equal(["10.255.0.6"], draining.Backends!.Candidates.Select(c => c.Address));
        Assert.Contains(draining.Notes, n => n.Contains("weight 0", StringComparison.Ordinal));

        var none = Run(Ipvs(Real("10.255.0.7", weight: 0)), "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, none.Verdict);
        Assert.Contains("no real server", none.Reason, StringComparison.Ordinal);
        Assert.Null(none.Backends);

        var empty = Run(Ipvs(), "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, empty.Verdict);
    }

    [Fact]
    public void On_the_ipvs_dataplane_a_mark_without_a_service_or_a_port_without_a_mark_is_refused_in_the_sandbox()
    {
        var noService = Run(Ipvs(Real("10.255.0.6")) with { SandboxIpvs = new IpvsSandboxView(IpvsMangle, IpvsNat, []) }, "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, noService.Verdict);
        Assert.Contains("no IPVS fwmark service 256 (0x00000100)", noService.Reason, StringComparison.Ordinal);

        var unmarked = IpvsMangle.Replace("-A MESH-INGRESS -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x100/0xffffffff\n", "", StringComparison.Ordinal);
        var noMark = Run(Ipvs(Real("10.255.0.6")) with { SandboxIpvs = new IpvsSandboxView(unmarked, IpvsNat, []) }, "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Refused, noMark.Verdict);
        Assert.Equal(("mangle", "MESH-INGRESS"), (noMark.Steps[^1].Table, noMark.Steps[^1].Chain));

        var unread = Run(Node3(null, "ipvs") with { SandboxNft = null }, "tcp", "198.18.0.13", 8080);
        Assert.Equal(TraceVerdict.Unsupported, unread.Verdict);
    }

    [Fact]
    public void On_the_ipvs_dataplane_a_local_real_server_shows_the_tasks_redirect_from_the_published_port()
    {
        var kernel = Ipvs(Real("10.255.0.6"), Real("10.255.0.7")) with
        {
            Node = "mesh-n1",
            LocalAddresses = new HashSet<string> { "127.0.0.1", "198.18.0.11", "172.18.0.1" },
            LocalTaskRules = new Dictionary<string, string> { ["10.255.0.6"] = Data("task-web.1.txt") },
        };
        var trace = Run(kernel, "tcp", "198.18.0.11", 8080);
        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
        var local = trace.Backends!.Candidates[0];
        Assert.NotNull(local.TaskSide);
        Assert.Contains(local.TaskSide!, s => s.Result == "REDIRECT to port 80");
        Assert.Contains(local.TaskSide!, s => s.Result.StartsWith("ACCEPT", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("sctp", "198.18.0.13", "8080", null, "proto")]
    [InlineData(null, "198.18.0.13", "8080", null, "proto")]
    [InlineData("tcp", "198.18.0", "8080", null, "addr")]
    [InlineData("tcp", "", "8080", null, "addr")]
    [InlineData("tcp", "::1", "8080", null, "addr")]
    [InlineData("tcp", "198.18.0.13", "0", null, "port")]
    [InlineData("tcp", "198.18.0.13", "65536", null, "port")]
    [InlineData("tcp", "198.18.0.13", "+80", null, "port")]
    [InlineData("tcp", "198.18.0.13", "80", "client", "from")]
    public void Bad_input_names_the_field(string? proto, string addr, string port, string? from, string field)
    {
        var e = Assert.Throws<ValidationException>(() => TraceRequest.Parse(proto, addr, port, from));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Listeners_are_read_from_proc_net()
    {
        const string tcp = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0B1212C6:0941 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
               1: 0B1212C6:0941 6412C6C6:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
            """;
        Assert.Equal([2369], ProcNetListeners.Parse("tcp", tcp));
    }

    [Fact]
    public void The_text_form_numbers_the_steps_lists_candidates_and_ends_with_the_verdict()
    {
        var output = new StringWriter();
        TraceText.Write(output, Run(Node3(), "tcp", "198.18.0.13", 8080));
        var text = output.ToString();
        Assert.Contains("1.  node mesh-n3 · nat PREROUTING", text, StringComparison.Ordinal);
        Assert.Contains("[1] 10.255.0.7:80  weight 1/3  web.2 on mesh-n2  health: not checked (no health checks yet)", text, StringComparison.Ordinal);
        Assert.Contains("verdict: forwarded — DNAT to one of 3 backends of service web", text, StringComparison.Ordinal);
    }
}
