using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Model;

/// <summary><c>--lb</c> and <c>--affinity</c>: what is refused (naming the option), stored, shown and changed.</summary>
public sealed class BalancingRulesTests
{
    private static readonly PublishedPort Port = new(8080, 80);
    private static readonly ServiceRoute Route = ServiceRoute.Parse("shop.test/=80");

    [Theory]
    [InlineData(LoadBalancing.LeastRequests, Affinity.None, true, true, "lb", "counts HTTP requests")]
    [InlineData(LoadBalancing.PowerOfTwo, Affinity.None, true, false, "lb", "counts HTTP requests")]
    [InlineData(LoadBalancing.LeastRequests, Affinity.None, false, false, "lb", "needs a --route")]
    [InlineData(LoadBalancing.LeastRequests, Affinity.SourceIp, false, true, "affinity", "use --lb maglev")]
    [InlineData(LoadBalancing.RoundRobin, Affinity.Cookie, true, false, "affinity", "cookie needs HTTP")]
    [InlineData(LoadBalancing.Maglev, (Affinity)7, true, false, "affinity", "none, cookie or source-ip")]
    [InlineData((LoadBalancing)9, Affinity.None, true, false, "lb", "round-robin, least-requests")]
    public void Combinations_that_cannot_be_honoured_are_refused_naming_the_option(LoadBalancing lb, Affinity affinity, bool port, bool route, string field, string why)
    {
        var state = ClusterState.Empty;
        var e = Assert.Throws<ValidationException>(() => StateTransitions.CreateService(state, new ServiceSpec
        {
            Name = "s",
            Ports = port ? [Port] : [],
            Routes = route ? [Route] : [],
            LoadBalancing = lb,
            Affinity = affinity,
        }));
        Assert.Equal(field, e.Field);
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(LoadBalancing.Maglev, Affinity.SourceIp, true, false)]
    [InlineData(LoadBalancing.RoundRobin, Affinity.SourceIp, true, true)]
    [InlineData(LoadBalancing.Maglev, Affinity.Cookie, true, true)] // the cookie acts on the routes; the port keeps maglev
    [InlineData(LoadBalancing.LeastRequests, Affinity.Cookie, false, true)]
    [InlineData(LoadBalancing.PowerOfTwo, Affinity.None, false, true)]
    public void Combinations_that_can_are_stored_and_read_back_in_json_as_the_cli_spells_them(LoadBalancing lb, Affinity affinity, bool port, bool route)
    {
        var (state, service) = StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "s", Ports = port ? [Port] : [], Routes = route ? [Route] : [], LoadBalancing = lb, Affinity = affinity });
        Assert.Equal((lb, affinity), (service.LoadBalancing, service.Affinity));
        var json = JsonSerializer.Serialize(service, MeshJson.Options);
        Assert.Contains($"\"lb\":\"{BalancingRules.Name(lb)}\"", json, StringComparison.Ordinal);
        Assert.Contains($"\"affinity\":\"{BalancingRules.Name(affinity)}\"", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize<ClusterService>(json, MeshJson.Options)!;
        Assert.Equal((lb, affinity), (back.LoadBalancing, back.Affinity));
        ObjectRules.Service(back, ReservedPorts.Default);
        Assert.Single(state.Services);
    }

    [Fact]
    public void Defaults_are_round_robin_and_none_and_a_stored_service_without_the_fields_reads_as_them()
    {
        var service = StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "s", Ports = [Port] }).Service;
        Assert.Equal((LoadBalancing.RoundRobin, Affinity.None), (service.LoadBalancing, service.Affinity));
        var old = JsonSerializer.Deserialize<ClusterService>("{\"name\":\"s\",\"firewallMark\":256}", MeshJson.Options)!;
        Assert.Equal((LoadBalancing.RoundRobin, Affinity.None), (old.LoadBalancing, old.Affinity));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ServiceSpec>("{\"name\":\"s\",\"lb\":\"round_robin\"}", MeshJson.Options));
    }

    [Fact]
    public void Update_changes_only_what_is_given_refuses_what_create_refuses_and_a_no_op_keeps_the_state()
    {
        var state = StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "web", Ports = [Port] }).State;
        var (next, web) = StateTransitions.UpdateService(state, "WEB", new ServiceUpdate { LoadBalancing = LoadBalancing.Maglev });
        Assert.Equal((LoadBalancing.Maglev, Affinity.None), (web.LoadBalancing, web.Affinity));
        Assert.Same(web, Assert.Single(next.Services));
        Assert.Same(next, StateTransitions.UpdateService(next, "web", new ServiceUpdate { LoadBalancing = LoadBalancing.Maglev }).State);

        var e = Assert.Throws<ValidationException>(() => StateTransitions.UpdateService(next, "web", new ServiceUpdate { Affinity = Affinity.Cookie }));
        Assert.Equal("affinity", e.Field);
        Assert.Throws<NotFoundException>(() => StateTransitions.UpdateService(next, "nope", new ServiceUpdate { Affinity = Affinity.SourceIp }));
        Assert.Equal((LoadBalancing.RoundRobin, Affinity.SourceIp), StateTransitions.UpdateService(next, "web", new ServiceUpdate { LoadBalancing = LoadBalancing.RoundRobin, Affinity = Affinity.SourceIp }).Service is var s ? (s.LoadBalancing, s.Affinity) : default);
    }

    [Theory]
    [InlineData("ROUND-ROBIN", LoadBalancing.RoundRobin)]
    [InlineData("least-requests", LoadBalancing.LeastRequests)]
    [InlineData("power-of-two", LoadBalancing.PowerOfTwo)]
    [InlineData("maglev", LoadBalancing.Maglev)]
    public void The_cli_names_parse(string text, LoadBalancing lb) => Assert.Equal(lb, BalancingRules.ParseLb("--lb", text));

    [Fact]
    public void A_bad_cli_name_is_refused_naming_the_option()
    {
        Assert.Equal("--lb: 'random' is not round-robin, least-requests, power-of-two or maglev", Assert.Throws<ValidationException>(() => BalancingRules.ParseLb("--lb", "random")).Message);
        Assert.Equal("--affinity", Assert.Throws<ValidationException>(() => BalancingRules.ParseAffinity("--affinity", "sticky")).Field);
    }
}
