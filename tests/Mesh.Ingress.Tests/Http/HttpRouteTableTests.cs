using System.Net;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.Http;

/// <summary>
/// The L7 entry's configuration from a cluster state, matched by YARP itself (its route matching in a test server;
/// the proxy pipeline answers with the matched route instead of forwarding, so no backend is needed).
/// </summary>
public sealed class HttpRouteTableTests
{
    private static ClusterState State()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80"), ServiceRoute.Parse("shop.test/api=8080")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "v1", Routes = [ServiceRoute.Parse("shop.test/api/v1=80")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] }).State;
        foreach (var service in new[] { "shop", "shop", "v1", "web" })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = service, Node = "n1" }).State;
        }

        return state;
    }

    [Fact]
    public void Clusters_are_per_service_and_target_with_the_running_tasks_ingress_addresses()
    {
        var state = State();
        var (routes, clusters) = HttpRouteTable.Build(state);
        Assert.Equal(["shop:shop.test/", "shop:shop.test/api", "v1:shop.test/api/v1"], routes.Select(r => r.RouteId));
        Assert.Equal(["shop:80", "shop:8080", "v1:80"], clusters.Select(c => c.ClusterId));
        var shop = state.Tasks.Where(t => t.Service == "shop").ToList();
        Assert.Equal(shop.Select(t => $"http://{t.Addresses["ingress"]}:8080").Order(), clusters[1].Destinations!.Values.Select(d => d.Address).Order());

        var draining = state with { Tasks = state.Tasks.Select(t => t.Name == "shop.1" ? t with { State = TaskState.Draining } : t).ToList() };
        Assert.Equal(["shop.2"], HttpRouteTable.Build(draining).Clusters[0].Destinations!.Keys);
    }

    [Theory]
    [InlineData("shop.test", "/", "shop:shop.test/")]
    [InlineData("SHOP.test:80", "/cart", "shop:shop.test/")]
    [InlineData("shop.test", "/api", "shop:shop.test/api")]
    [InlineData("shop.test", "/API/x", "shop:shop.test/api")]
    [InlineData("shop.test", "/apix", "shop:shop.test/")] // prefixes are whole segments
    [InlineData("shop.test", "/api/v1", "v1:shop.test/api/v1")]
    [InlineData("shop.test", "/api/v1/orders/7", "v1:shop.test/api/v1")]
    [InlineData("shop.test", "/api/v2", "shop:shop.test/api")]
    [InlineData("nope.test", "/", "404")]
    [InlineData("web", "/api", "404")]
    public async Task The_most_specific_prefix_of_the_host_wins_and_an_unknown_host_is_404(string host, string path, string expected)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        var (routes, clusters) = HttpRouteTable.Build(State());
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        await using var app = builder.Build();
        app.MapReverseProxy(proxy => proxy.Use((HttpContext context, RequestDelegate _) => context.Response.WriteAsync(context.GetReverseProxyFeature().Route.Config.RouteId)));
        app.MapFallback("{**path}", context => { context.Response.StatusCode = 404; return context.Response.WriteAsync("404"); });
        await app.StartAsync();

        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://x" + path));
        request.Headers.Host = host;
        using var response = await app.GetTestClient().SendAsync(request);
        Assert.Equal(expected, await response.Content.ReadAsStringAsync());
        Assert.Equal(expected == "404" ? HttpStatusCode.NotFound : HttpStatusCode.OK, response.StatusCode);
    }
}
