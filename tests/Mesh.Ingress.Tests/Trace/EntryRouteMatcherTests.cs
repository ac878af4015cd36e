using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Http;
using Mesh.Ingress.Trace;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.Trace;

/// <summary>
/// <see cref="EntryRouteMatcher"/> against a real YARP application built as the entry builds its own (in-memory
/// provider, <c>MapReverseProxy</c>, the 404 fallback), its proxy pipeline answering with the route it was given
/// instead of forwarding: for every request the matcher names the route a real request through the app gets.
/// </summary>
public sealed class EntryRouteMatcherTests : IAsyncLifetime
{
    private WebApplication _app = null!;
    private HttpClient _client = null!;
    private readonly EntryRouteMatcher _matcher = new();

    public static ClusterState State()
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80"), ServiceRoute.Parse("shop.test/api=8080")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "v1", Routes = [ServiceRoute.Parse("shop.test/api/v1=80")] }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "empty", Routes = [ServiceRoute.Parse("empty.test/=80")] }).State;
        foreach (var service in new[] { "shop", "shop", "v1" })
        {
            state = StateTransitions.AddTask(state, new TaskSpec { Service = service, Node = "n1" }).State;
        }

        return state;
    }

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        var (routes, clusters) = HttpRouteTable.Build(State());
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        _app = builder.Build();
        _app.MapReverseProxy(proxy => proxy.Use((HttpContext context, RequestDelegate _) => context.Response.WriteAsync(context.GetReverseProxyFeature().Route.Config.RouteId)));
        _app.MapFallback("{**path}", context => { context.Response.StatusCode = 404; return context.Response.WriteAsync("404"); });
        await _app.StartAsync();
        _client = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _app.DisposeAsync();
    }

    private async Task<string> ThroughTheAppAsync(string host, string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("http://x" + path));
        request.Headers.Host = host;
        using var response = await _client.SendAsync(request);
        return await response.Content.ReadAsStringAsync();
    }

    [Theory]
    [InlineData("shop.test", "/", "shop:shop.test/")]
    [InlineData("SHOP.test:80", "/cart", "shop:shop.test/")]
    [InlineData("shop.test", "/api", "shop:shop.test/api")]
    [InlineData("shop.test", "/API/x", "shop:shop.test/api")]
    [InlineData("shop.test", "/apix", "shop:shop.test/")]
    [InlineData("shop.test", "/api/v1", "v1:shop.test/api/v1")]
    [InlineData("shop.test", "/api/v1/orders/7", "v1:shop.test/api/v1")]
    [InlineData("shop.test", "/api/v2", "shop:shop.test/api")]
    [InlineData("shop.test", "/a%70i/v1", "v1:shop.test/api/v1")] // routing sees the decoded path
    [InlineData("empty.test", "/x", "empty:empty.test/")]
    [InlineData("nope.test", "/", "404")]
    [InlineData("shop", "/api", "404")]
    public async Task The_matcher_names_the_route_a_real_request_gets(string host, string path, string expected)
    {
        Assert.Equal(expected, await ThroughTheAppAsync(host, path));
        var match = await _matcher.MatchAsync(_app, host, path, CancellationToken.None);
        Assert.Equal(expected, match.Route?.Id ?? "404");
        Assert.Equal(expected == "404", match.Fallback is not null);
    }

    [Fact]
    public async Task The_cluster_is_read_from_yarps_live_state_with_every_destination_and_its_health()
    {
        var state = State();
        var match = await _matcher.MatchAsync(_app, "shop.test", "/api/x", CancellationToken.None);
        Assert.Equal("shop:8080", match.Cluster!.Id);
        Assert.Equal("RoundRobin", match.Cluster.LoadBalancing);
        Assert.Equal(["shop.1", "shop.2"], match.Cluster.Destinations.Select(d => d.Id));
        Assert.Equal(state.Tasks.Where(t => t.Service == "shop").Select(t => $"http://{t.Addresses["ingress"]}:8080"), match.Cluster.Destinations.Select(d => d.Address));
        Assert.All(match.Cluster.Destinations, d => Assert.Equal(("unknown", "unknown", true), (d.ActiveHealth, d.PassiveHealth, d.Available)));
        Assert.Equal(["v1:shop.test/api/v1", "shop:shop.test/api", "shop:shop.test/"], match.RoutesOfHost.Select(r => r.Id)); // most specific first
        Assert.Equal(4, match.RouteCount);

        // With health checks on the cluster (passive here), YARP's health marks shop.2 unhealthy: it leaves the
        // available destinations, as the proxy sees them.
        var (routes, clusters) = HttpRouteTable.Build(state);
        _app.Services.GetRequiredService<InMemoryConfigProvider>().Update(routes, [.. clusters.Select(c => c with { HealthCheck = new HealthCheckConfig { Passive = new PassiveHealthCheckConfig { Enabled = true } } })]);
        var lookup = _app.Services.GetRequiredService<IProxyStateLookup>();
        Assert.True(lookup.TryGetCluster("shop:8080", out var cluster));
        _app.Services.GetRequiredService<IDestinationHealthUpdater>().SetPassive(cluster, cluster.Destinations["shop.2"], DestinationHealth.Unhealthy, TimeSpan.FromMinutes(5));
        // (YARP recomputes the available set on the thread pool after a passive change.)
        for (var i = 0; i < 100 && cluster.DestinationsState.AvailableDestinations.Count != 1; i++)
        {
            await Task.Delay(20);
        }

        match = await _matcher.MatchAsync(_app, "shop.test", "/api/x", CancellationToken.None);
        Assert.Equal([("shop.1", "unknown", true), ("shop.2", "unhealthy", false)], match.Cluster!.Destinations.Select(d => (d.Id, d.PassiveHealth, d.Available)));

        var empty = await _matcher.MatchAsync(_app, "empty.test", "/", CancellationToken.None);
        Assert.Equal("empty:80", empty.Cluster!.Id);
        Assert.Empty(empty.Cluster.Destinations);
    }

    [Fact]
    public async Task A_configuration_swapped_in_while_running_is_what_the_matcher_sees_next()
    {
        Assert.Equal("shop:shop.test/api", (await _matcher.MatchAsync(_app, "shop.test", "/api/v2/x", CancellationToken.None)).Route!.Id);
        var state = StateTransitions.CreateService(State(), new ServiceSpec { Name = "v2", Routes = [ServiceRoute.Parse("shop.test/api/v2=80")] }).State;
        var (routes, clusters) = HttpRouteTable.Build(state);
        _app.Services.GetRequiredService<InMemoryConfigProvider>().Update(routes, clusters);

        Assert.Equal("v2:shop.test/api/v2", await ThroughTheAppAsync("shop.test", "/api/v2/x"));
        Assert.Equal("v2:shop.test/api/v2", (await _matcher.MatchAsync(_app, "shop.test", "/api/v2/x", CancellationToken.None)).Route!.Id);
    }
}
