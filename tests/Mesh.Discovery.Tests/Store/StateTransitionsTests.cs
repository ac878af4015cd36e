using FsCheck;
using FsCheck.Fluent;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Store;

public class StateTransitionsTests
{
    private static ClusterState WithNodes(params string[] names)
    {
        var state = ClusterState.Empty;
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            state = StateTransitions.RegisterNode(state, new NodeSpec { Name = name, AdvertiseAddress = $"198.18.0.{11 + i}" }).State;
        }

        return state;
    }

    private static ClusterState WithWeb(ClusterState state) =>
        StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;

    [Fact]
    public void Nodes_get_sandbox_addresses_from_the_ingress_subnet_in_order_and_keep_them_on_reregistration()
    {
        var state = WithNodes("n1", "n2");
        Assert.Equal(["10.255.0.2", "10.255.0.3"], state.Nodes.Select(n => n.IngressSandboxIp));

        var (again, node) = StateTransitions.RegisterNode(state, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.99" });
        Assert.Equal("10.255.0.2", node.IngressSandboxIp);
        Assert.Equal("198.18.0.99", again.Nodes.Single(n => n.Name == "n1").AdvertiseAddress);
        Assert.Equal(2, again.Nodes.Count);
    }

    [Fact]
    public void A_task_names_its_service_and_node_as_they_were_registered_whatever_the_case_asked()
    {
        // Found by the API fuzz run: node 'tcp' was accepted for a node registered as 'TCP' and stored as asked, so
        // no daemon (which picks its tasks by exact name) would ever have run it.
        var (state, task) = StateTransitions.AddTask(WithWeb(WithNodes("Host-A")), new TaskSpec { Service = "WEB", Node = "host-a" });
        Assert.Equal("Host-A", task.Node);
        Assert.Equal("web", task.Service);
        Assert.Equal("Host-A", state.Tasks.Single().Node);

        // The same for a service's networks: a task of it then gets its address on that network.
        state = StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "appnet", Subnet = "10.0.9.0/24", Vni = 4097 }).State;
        (state, var api) = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Networks = ["AppNet"] });
        Assert.Equal(["appnet"], api.Networks);
        Assert.True(StateTransitions.AddTask(state, new TaskSpec { Service = "api", Node = "HOST-A" }).Task.Addresses.ContainsKey("appnet"));
    }

    [Fact]
    public void A_vip_service_gets_a_mark_and_an_ingress_vip_and_its_tasks_get_distinct_addresses()
    {
        var state = WithWeb(WithNodes("n1"));
        var web = state.Services.Single();
        Assert.Equal(0x100, web.FirewallMark);
        Assert.Equal("10.255.0.3", web.Vips["ingress"]);

        var (s1, t1) = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" });
        var (_, t2) = StateTransitions.AddTask(s1, new TaskSpec { Service = "web", Node = "n1" });
        Assert.Equal("web.1", t1.Name);
        Assert.Equal("web.2", t2.Name);
        Assert.Equal("10.255.0.4", t1.Addresses["ingress"]);
        Assert.Equal("10.255.0.5", t2.Addresses["ingress"]);
    }

    [Fact]
    public void Dnsrr_services_get_no_vip_and_marks_are_unique()
    {
        var state = WithWeb(WithNodes("n1"));
        var (next, api) = StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Mode = ServiceMode.Dnsrr, Ports = [new PublishedPort(9090, 90)] });
        Assert.Empty(api.Vips);
        Assert.Equal(0x101, api.FirewallMark);
        Assert.Equal(2, next.Services.Select(s => s.FirewallMark).Distinct().Count());
    }

    public static TheoryData<ServiceSpec, string> BadServices => new()
    {
        { new ServiceSpec { Name = "" }, "name" },
        { new ServiceSpec { Name = "Bad_Name" }, "name" },
        { new ServiceSpec { Name = "-web" }, "name" },
        { new ServiceSpec { Name = new string('a', 64) }, "name" },
        { new ServiceSpec { Name = "ok", Ports = [new PublishedPort(0, 80)] }, "ports[0].published" },
        { new ServiceSpec { Name = "ok", Ports = [new PublishedPort(80, 65536)] }, "ports[0].target" },
        { new ServiceSpec { Name = "ok", Ports = [new PublishedPort(80, 80), new PublishedPort(80, 81)] }, "ports[1]" },
        { new ServiceSpec { Name = "ok", Networks = ["nope"] }, "networks[0]" },
        { new ServiceSpec { Name = "ok", Networks = ["ingress"] }, "networks[0]" },
        { new ServiceSpec { Name = "ok", Mode = (ServiceMode)7 }, "mode" },
        { new ServiceSpec { Name = "ok", Aliases = ["fine", "bad_alias"] }, "aliases[1]" },
        { new ServiceSpec { Name = "ok", Aliases = ["tasks.ok"] }, "aliases[0]" },
        { new ServiceSpec { Name = "ok", Aliases = ["OK"] }, "aliases[0]" },
        { new ServiceSpec { Name = "ok", Aliases = ["a", "A"] }, "aliases[1]" },
        { new ServiceSpec { Name = "ok", Aliases = [""] }, "aliases[0]" },
    };

    [Theory]
    [MemberData(nameof(BadServices))]
    public void Bad_service_specs_are_rejected_naming_the_field(ServiceSpec spec, string field)
    {
        var e = Assert.Throws<ValidationException>(() => StateTransitions.CreateService(ClusterState.Empty, spec));
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Duplicate_names_and_published_ports_conflict_but_the_same_port_on_another_protocol_does_not()
    {
        var state = WithWeb(WithNodes("n1"));
        Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "WEB" }));
        var e = Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Ports = [new PublishedPort(8080, 81)] }));
        Assert.Contains("'web'", e.Message, StringComparison.Ordinal);
        var (_, udp) = StateTransitions.CreateService(state, new ServiceSpec { Name = "dns", Ports = [new PublishedPort(8080, 53, TransportProtocol.Udp)] });
        Assert.Equal(TransportProtocol.Udp, udp.Ports[0].Protocol);
    }

    [Fact]
    public void Aliases_are_kept_and_no_service_or_task_name_is_taken_twice_but_tasks_may_share_an_alias()
    {
        var state = WithNodes("n1");
        (state, var web) = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Aliases = ["frontend", "www.corp"] });
        Assert.Equal(["frontend", "www.corp"], web.Aliases);

        // A service alias is a name: no other service (name or alias) and no task may take it, and it may not take theirs.
        var clash = Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "Frontend" }));
        Assert.Contains("an alias of service 'web'", clash.Message, StringComparison.Ordinal);
        Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Aliases = ["WWW.corp"] }));
        Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "api", Aliases = ["web"] }));
        Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Aliases = ["frontend"] }));
        Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Name = "www.corp", Service = "web", Node = "n1" }));

        (state, var t1) = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Aliases = ["cache"] });
        (state, var t2) = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Aliases = ["CACHE"] });
        Assert.Equal(["cache"], t1.Aliases);
        Assert.Equal(["CACHE"], t2.Aliases);
        Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Aliases = ["web.1"] }));
        Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "cache" }));
        Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Name = "cache", Service = "web", Node = "n1" }));
        Assert.Equal("aliases[0]", Assert.Throws<ValidationException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Aliases = ["-x"] })).Field);
    }

    [Fact]
    public void Task_addresses_given_by_the_runtime_are_checked()
    {
        var state = WithWeb(WithNodes("n1"));
        Assert.Throws<ValidationException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.0.0.1" } }));
        Assert.Throws<ValidationException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.300" } }));
        Assert.Throws<ConflictException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.0.2" } }));
        Assert.Throws<NotFoundException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "nope", Node = "n1" }));
        Assert.Throws<NotFoundException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n9" }));
        Assert.Throws<ValidationException>(() => StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", NetnsPath = "relative/path" }));
        var (_, task) = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1", Addresses = new Dictionary<string, string> { ["ingress"] = "10.255.7.7" } });
        Assert.Equal("10.255.7.7", task.Addresses["ingress"]);
    }

    [Fact]
    public void Removing_a_service_removes_its_tasks_and_frees_its_addresses()
    {
        var state = WithWeb(WithNodes("n1"));
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" }).State;
        state = StateTransitions.RemoveService(state, "web");
        Assert.Empty(state.Services);
        Assert.Empty(state.Tasks);
        var again = WithWeb(state);
        Assert.Equal("10.255.0.3", again.Services.Single().Vips["ingress"]);
        Assert.Throws<NotFoundException>(() => StateTransitions.RemoveService(state, "web"));
        Assert.Throws<NotFoundException>(() => StateTransitions.RemoveTask(state, "web.1"));
    }

    [Fact]
    public void Networks_must_not_overlap_or_reuse_a_vni()
    {
        var (state, appnet) = StateTransitions.CreateNetwork(ClusterState.Empty, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 });
        Assert.Equal("10.0.1.0/24", appnet.Subnet);
        Assert.Throws<ConflictException>(() => StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "x", Subnet = "10.255.128.0/24", Vni = 5000 }));
        Assert.Throws<ConflictException>(() => StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "x", Subnet = "10.0.2.0/24", Vni = 4097 }));
        Assert.Throws<ValidationException>(() => StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "x", Subnet = "10.0.2.1/24", Vni = 5000 }));
        Assert.Throws<ValidationException>(() => StateTransitions.CreateNetwork(state, new NetworkSpec { Name = "x", Subnet = "10.0.2.0/24", Vni = 0 }));
    }

    [Fact]
    public void Allocated_addresses_never_collide_whatever_the_order_of_adds_and_removes()
    {
        var ops = Gen.ListOf(Gen.Choose(0, 9)).ToArbitrary();
        Prop.ForAll(ops, steps =>
        {
            var state = WithWeb(WithNodes("n1", "n2"));
            var n = 0;
            foreach (var step in steps)
            {
                if (step < 7 || state.Tasks.Count == 0)
                {
                    state = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = step % 2 == 0 ? "n1" : "n2" }).State;
                }
                else
                {
                    state = StateTransitions.RemoveTask(state, state.Tasks[n++ % state.Tasks.Count].Name);
                }
            }

            var used = state.Nodes.Select(x => x.IngressSandboxIp)
                .Concat(state.Services.SelectMany(s => s.Vips.Values))
                .Concat(state.Tasks.Select(t => t.Addresses["ingress"]))
                .ToList();
            return used.Count == used.Distinct().Count() && state.Tasks.Select(t => t.Name).Distinct().Count() == state.Tasks.Count;
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData("8080:80", 8080, 80, TransportProtocol.Tcp)]
    [InlineData("8080:80/udp", 8080, 80, TransportProtocol.Udp)]
    [InlineData("53:53/UDP", 53, 53, TransportProtocol.Udp)]
    public void Published_ports_parse(string text, int published, int target, TransportProtocol protocol) =>
        Assert.Equal(new PublishedPort(published, target, protocol), PublishedPort.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("8080:")]
    [InlineData("0:80")]
    [InlineData("8080:80/sctp")]
    [InlineData("-1:80")]
    [InlineData("80:80:80")]
    [InlineData(" 80:80")]
    [InlineData("9300")]
    [InlineData("53/udp")]
    public void Bad_published_ports_are_rejected(string text) =>
        Assert.Equal("publish", Assert.Throws<ValidationException>(() => PublishedPort.Parse(text)).Field);

    /// <summary>Issue 13: a lone port was silently read as PORT:PORT. It is refused, with the forms that work and the fix.</summary>
    [Theory]
    [InlineData("9300", "9300:9300")]
    [InlineData("53/udp", "53:53/udp")]
    public void A_lone_published_port_is_refused_with_the_accepted_forms(string text, string suggestion)
    {
        var e = Assert.Throws<ValidationException>(() => PublishedPort.Parse(text));
        Assert.Contains(PublishedPort.AcceptedForms, e.Message, StringComparison.Ordinal);
        Assert.Contains($"write {suggestion}", e.Message, StringComparison.Ordinal);
    }
}
