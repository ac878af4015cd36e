using System.Net;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Discovery.Naming;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Naming;

public class ClusterDnsAuthorityTests
{
    private readonly ClusterDnsAuthority _authority = new();
    private readonly ClusterState _state;

    public ClusterDnsAuthorityTests()
    {
        var s = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "appnet", Subnet = "10.0.1.0/24", Vni = 4097 }).State;
        s = StateTransitions.CreateNetwork(s, new NetworkSpec { Name = "other", Subnet = "10.0.2.0/24", Vni = 4098 }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)], Networks = ["appnet"], Aliases = ["frontend", "www.corp.example"] }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "api", Mode = ServiceMode.Dnsrr, Ports = [new PublishedPort(9090, 90, TransportProtocol.Udp)], Networks = ["appnet"], Aliases = ["backend"] }).State;
        s = StateTransitions.CreateService(s, new ServiceSpec { Name = "hidden", Networks = ["other"], Aliases = ["secret", "secret.corp.example"] }).State;
        foreach (var (service, aliases) in new (string Service, string[] Aliases)[] { ("web", ["cache"]), ("web", []), ("web", ["cache"]), ("api", []), ("api", ["db.corp.example"]), ("hidden", ["sneaky"]) })
        {
            s = StateTransitions.AddTask(s, new TaskSpec { Service = service, Node = "n1", Aliases = aliases }).State;
        }

        _state = s;
        _authority.Update(s);
    }

    private DnsLookupResult Ask(string name, DnsType type = DnsType.A, string from = "web.1") =>
        _authority.Lookup(new DnsQuestion(DnsName.Parse(name), type), new DnsClientContext(from, null, DnsTransport.Udp));

    private string[] Addresses(DnsLookupResult result) => result.Answers.Select(r => ((ARecordData)r.Data).Address.ToString()).Order(StringComparer.Ordinal).ToArray();

    private string[] TaskIps(string service) => _state.Tasks.Where(t => t.Service == service).Select(t => t.Addresses["appnet"]).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public void A_vip_service_resolves_to_its_vip_on_the_shared_network_only()
    {
        var result = Ask("web");
        Assert.Equal(DnsLookupStatus.Answered, result.Status);
        Assert.Equal([_state.Services.Single(s => s.Name == "web").Vips["appnet"]], Addresses(result));
        Assert.True(result.Answers.All(a => a.Ttl <= 5));
    }

    [Fact]
    public void A_starting_task_is_in_no_answer_but_its_own_queries_are_answered_and_a_failed_one_is_neither()
    {
        var s = StateTransitions.AddTask(_state, new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting, Aliases = ["cache"] }).State;
        var starting = s.Tasks.Single(t => t.State == TaskState.Starting);
        _authority.Update(s);
        Assert.Equal(TaskIps("web"), Addresses(Ask("tasks.web")));
        Assert.DoesNotContain(starting.Addresses["appnet"], Addresses(Ask("cache")));
        Assert.Equal(DnsLookupStatus.NameError, Ask(starting.Name).Status);
        // From inside the starting container (it may resolve what it needs before it listens): answered.
        Assert.Equal(Addresses(Ask("web")), Addresses(Ask("web", from: starting.Name)));
        Assert.Equal(TaskIps("web"), Addresses(Ask("tasks.web", from: starting.Name)));

        s = StateTransitions.SetTaskState(s, starting.Name, new TaskUpdate { State = TaskState.Running }).State;
        _authority.Update(s);
        Assert.Contains(starting.Addresses["appnet"], Addresses(Ask("tasks.web")));
        Assert.Contains(starting.Addresses["appnet"], Addresses(Ask("cache")));

        s = StateTransitions.SetTaskState(StateTransitions.AddTask(s, new TaskSpec { Service = "web", Node = "n1", State = TaskState.Starting }).State, "web.5", new TaskUpdate { State = TaskState.Failed }).State;
        _authority.Update(s);
        Assert.DoesNotContain(s.Tasks.Single(t => t.Name == "web.5").Addresses["appnet"], Addresses(Ask("tasks.web")));
        Assert.Equal(DnsLookupStatus.NotMine, Ask("web", from: "web.5").Status);
    }

    [Fact]
    public void Names_are_case_insensitive()
    {
        Assert.Equal(Addresses(Ask("web")), Addresses(Ask("WeB")));
        Assert.Equal(Addresses(Ask("tasks.web")), Addresses(Ask("TASKS.Web")));
    }

    [Fact]
    public void A_dnsrr_service_resolves_to_its_task_ips_in_a_shuffled_order()
    {
        Assert.Equal(TaskIps("api"), Addresses(Ask("api")));
        var orders = Enumerable.Range(0, 50).Select(_ => string.Join(',', Ask("api").Answers.Select(a => a.Data.ToString()))).Distinct().Count();
        Assert.Equal(2, orders);
    }

    [Fact]
    public void Tasks_dot_service_and_task_names_resolve_to_task_ips()
    {
        Assert.Equal(TaskIps("web"), Addresses(Ask("tasks.web")));
        Assert.Equal([_state.Tasks.Single(t => t.Name == "api.2").Addresses["appnet"]], Addresses(Ask("api.2")));
    }

    [Fact]
    public void Service_aliases_resolve_as_the_service_and_task_aliases_to_every_task_that_carries_them()
    {
        Assert.Equal(Addresses(Ask("web")), Addresses(Ask("frontend")));
        Assert.Equal(Addresses(Ask("web")), Addresses(Ask("WWW.Corp.Example")));
        Assert.Equal(TaskIps("web"), Addresses(Ask("tasks.frontend")));
        Assert.Equal(TaskIps("api"), Addresses(Ask("backend")));
        Assert.Equal(new[] { "web.1", "web.3" }.Select(t => _state.Tasks.Single(x => x.Name == t).Addresses["appnet"]).Order(StringComparer.Ordinal), Addresses(Ask("cache")));
        Assert.Equal([_state.Tasks.Single(t => t.Name == "api.2").Addresses["appnet"]], Addresses(Ask("db.corp.example")));
        Assert.Equal(DnsLookupStatus.NoData, Ask("frontend", DnsType.AAAA).Status);
        Assert.Equal(DnsLookupStatus.Answered, _authority.Lookup(new DnsQuestion(DnsName.Parse("_80._tcp.frontend"), DnsType.SRV), new DnsClientContext("web.1", null, DnsTransport.Udp)).Status);

        // A dotted alias is answered, but names below it and other names in its domain are not claimed.
        Assert.Equal(DnsLookupStatus.NotMine, Ask("x.www.corp.example").Status);
        Assert.Equal(DnsLookupStatus.NotMine, Ask("other.corp.example").Status);
    }

    [Fact]
    public void Aliases_on_networks_the_querier_does_not_share_are_invisible()
    {
        Assert.Equal(DnsLookupStatus.NameError, Ask("secret").Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("sneaky").Status);
        // A dotted name that is not ours here goes upstream, as if no alias existed.
        Assert.Equal(DnsLookupStatus.NotMine, Ask("secret.corp.example").Status);
    }

    [Fact]
    public void Services_on_networks_the_querier_does_not_share_are_invisible()
    {
        Assert.Equal(DnsLookupStatus.NameError, Ask("hidden").Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("tasks.hidden").Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("hidden.1").Status);
    }

    [Fact]
    public void Unknown_single_labels_are_nxdomain_and_dotted_names_are_forwarded()
    {
        Assert.Equal(DnsLookupStatus.NameError, Ask("nosuchservice").Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("tasks.nosuch").Status);
        Assert.Equal(DnsLookupStatus.NotMine, Ask("example.com").Status);
        Assert.Equal(DnsLookupStatus.NotMine, Ask("web", from: "unknown.9").Status);
    }

    [Fact]
    public void An_existing_name_without_ipv6_is_nodata_not_nxdomain()
    {
        Assert.Equal(DnsLookupStatus.NoData, Ask("web", DnsType.AAAA).Status);
        Assert.Equal(DnsLookupStatus.NoData, Ask("web.1", DnsType.TXT).Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("nosuch", DnsType.AAAA).Status);
    }

    [Fact]
    public void Ptr_names_tasks_and_vips_on_shared_networks()
    {
        var task = _state.Tasks.Single(t => t.Name == "web.2").Addresses["appnet"];
        var vip = _state.Services.Single(s => s.Name == "web").Vips["appnet"];
        Assert.Equal("web.2.", Ask(Reverse(task), DnsType.PTR).Answers.Single().Data.ToString());
        Assert.Equal("web.", Ask(Reverse(vip), DnsType.PTR).Answers.Single().Data.ToString());
        Assert.Equal(DnsLookupStatus.NameError, Ask(Reverse("10.0.1.250"), DnsType.PTR).Status);
        Assert.Equal(DnsLookupStatus.NotMine, Ask(Reverse("8.8.8.8"), DnsType.PTR).Status);
        Assert.Equal(DnsLookupStatus.NotMine, Ask(Reverse(_state.Tasks.Single(t => t.Name == "hidden.1").Addresses["other"]), DnsType.PTR).Status);
    }

    [Fact]
    public void Srv_answers_published_and_target_ports_with_targets_and_their_addresses()
    {
        var vip = Ask("_8080._tcp.web", DnsType.SRV);
        var srv = (SrvRecordData)vip.Answers.Single().Data;
        Assert.Equal(80, srv.Port);
        Assert.Equal("web", srv.Target.ToString());
        Assert.Single(vip.Additionals);

        var rr = Ask("_90._udp.api", DnsType.SRV);
        Assert.Equal(["api.1", "api.2"], rr.Answers.Select(a => ((SrvRecordData)a.Data).Target.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(2, rr.Additionals.Count);

        Assert.Equal(DnsLookupStatus.NoData, Ask("_90._tcp.api", DnsType.SRV).Status);
        Assert.Equal(DnsLookupStatus.NameError, Ask("_80._tcp.nosuch", DnsType.SRV).Status);
    }

    [Fact]
    public void Removed_tasks_disappear_on_the_next_update()
    {
        _authority.Update(StateTransitions.RemoveTask(_state, "web.3"));
        Assert.Equal(2, Ask("tasks.web").Answers.Count);
        Assert.Equal(DnsLookupStatus.NameError, Ask("web.3").Status);
    }

    private static string Reverse(string ip) => string.Join('.', IPAddress.Parse(ip).ToString().Split('.').Reverse()) + ".in-addr.arpa";
}
