using System.Net;
using System.Net.Http.Json;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Tests.Api;

/// <summary>Service routes over the HTTP API: stored and shown, a taken host+prefix is 409, a bad one 400, neither changes anything.</summary>
public sealed class RouteApiTests
{
    [Fact]
    public async Task Routes_are_created_and_shown_and_a_taken_or_bad_route_changes_nothing()
    {
        await using var api = await InMemoryApi.StartAsync();
        using var created = await api.Http.PostAsJsonAsync("/v1/services", new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80"), ServiceRoute.Parse("shop.test/api=8080")] }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var shown = await api.Http.GetStringAsync(new Uri("/v1/services/shop", UriKind.Relative));
        Assert.Contains("{\"host\":\"shop.test\",\"pathPrefix\":\"/api\",\"target\":8080}", shown, StringComparison.Ordinal);

        var before = await api.Store.GetStateAsync();
        using var taken = await api.Http.PostAsJsonAsync("/v1/services", new ServiceSpec { Name = "other", Routes = [new("SHOP.test", "/api/", 80)] }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Conflict, taken.StatusCode);
        Assert.Contains("route shop.test/api already goes to service 'shop'", (await taken.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, StringComparison.Ordinal);

        using var bad = await api.Http.PostAsync(new Uri("/v1/services", UriKind.Relative),
            new StringContent("{\"name\":\"other\",\"routes\":[{\"host\":\"other.test\",\"pathPrefix\":\"api\",\"target\":80}]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("routes[0].pathPrefix", await bad.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(before.Revision, (await api.Store.GetStateAsync()).Revision);
    }
}
