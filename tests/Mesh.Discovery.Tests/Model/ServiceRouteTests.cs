using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Discovery.Tests.Model;

public class ServiceRouteTests
{
    [Theory]
    [InlineData("web.test/=80", "web.test", "/", 80)]
    [InlineData("web.test=80", "web.test", "/", 80)]
    [InlineData("Shop.Test/api=8080", "shop.test", "/api", 8080)]
    [InlineData("shop.test/api/v1/=8080", "shop.test", "/api/v1", 8080)]
    [InlineData("localhost/x_y.z~-=1", "localhost", "/x_y.z~-", 1)]
    public void Parse_reads_host_prefix_and_target_in_normal_form(string text, string host, string prefix, int target)
    {
        var route = ServiceRoute.Parse(text);
        Assert.Equal(new ServiceRoute(host, prefix, target), route);
        Assert.Equal(route, ServiceRoute.Parse(route.ToString()));
    }

    [Theory]
    [InlineData("web.test/", "route")] // no port
    [InlineData("web.test/=0", "route")]
    [InlineData("web.test/=65536", "route")]
    [InlineData("web.test/=8o", "route")]
    [InlineData("web/=80", "route.host")] // no domain
    [InlineData("-web.test/=80", "route.host")]
    [InlineData("=80", "route.host")]
    [InlineData("web.test/a//b=80", "route.pathPrefix")]
    [InlineData("web.test/a/../b=80", "route.pathPrefix")]
    [InlineData("web.test/{x}=80", "route.pathPrefix")]
    [InlineData("web.test/a%2fb=80", "route.pathPrefix")]
    [InlineData("web.test/a b=80", "route.pathPrefix")]
    [InlineData("web.test/a\nb=80", "route.pathPrefix")]
    public void Parse_refuses_what_is_not_a_route_naming_the_part(string text, string field)
    {
        var e = Assert.Throws<ValidationException>(() => ServiceRoute.Parse(text));
        Assert.Equal(field, e.Field);
    }

    private static ClusterState WithWeb(params ServiceRoute[] routes) =>
        StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "web", Routes = routes }).State;

    [Fact]
    public void A_host_and_prefix_another_service_has_is_a_conflict_any_spelling_and_a_different_prefix_is_not()
    {
        var state = WithWeb(ServiceRoute.Parse("web.test/=80"), ServiceRoute.Parse("web.test/api=8080"));
        var e = Assert.Throws<ConflictException>(() => StateTransitions.CreateService(state, new ServiceSpec { Name = "shop", Routes = [new("WEB.test", "/API/", 81)] }));
        Assert.Contains("route web.test/API already goes to service", e.Message, StringComparison.Ordinal);
        Assert.Contains("'web'", e.Message, StringComparison.Ordinal);
        var (next, shop) = StateTransitions.CreateService(state, new ServiceSpec { Name = "shop", Routes = [new("web.test", "/shop", 80)] });
        Assert.Equal([new ServiceRoute("web.test", "/shop", 80)], shop.Routes);
        Assert.Equal(2, next.Services.Count);
    }

    [Fact]
    public void Twice_in_one_service_or_unnormalized_from_the_api_is_refused_or_normalized()
    {
        var e = Assert.Throws<ValidationException>(() => WithWeb(new ServiceRoute("web.test", "/a", 80), new ServiceRoute("Web.Test", "/a/", 81)));
        Assert.Equal("routes[1]", e.Field);
        var bad = Assert.Throws<ValidationException>(() => WithWeb(new ServiceRoute("web.test", "a", 80)));
        Assert.Equal("routes[0].pathPrefix", bad.Field);
        var service = Assert.Single(WithWeb(new ServiceRoute("Web.Test", "/A/", 80)).Services);
        Assert.Equal(new ServiceRoute("web.test", "/A", 80), Assert.Single(service.Routes));
    }

    [Fact]
    public void A_service_with_routes_joins_ingress_so_its_tasks_get_an_address_the_entry_reaches()
    {
        var state = WithWeb(ServiceRoute.Parse("web.test/=80"));
        state = StateTransitions.RegisterNode(state, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        var (_, task) = StateTransitions.AddTask(state, new TaskSpec { Service = "web", Node = "n1" });
        Assert.True(task.Addresses.ContainsKey(OverlayNetwork.IngressName));
    }

    [Fact]
    public void Routes_round_trip_through_the_json_dialect_and_a_stored_unnormal_route_is_rejected()
    {
        var service = Assert.Single(WithWeb(ServiceRoute.Parse("web.test/api=8080")).Services);
        var json = JsonSerializer.Serialize(service, MeshJson.Options);
        Assert.Contains("\"routes\":[{\"host\":\"web.test\",\"pathPrefix\":\"/api\",\"target\":8080}]", json, StringComparison.Ordinal);
        Assert.Equal(service.Routes, JsonSerializer.Deserialize<ClusterService>(json, MeshJson.Options)!.Routes);
        var e = Assert.Throws<ValidationException>(() => ObjectRules.Service(service with { Routes = [new("Web.test", "/api", 8080)] }, ReservedPorts.Default));
        Assert.Equal("routes", e.Field);
    }
}
