using System.Net;
using System.Net.Http.Json;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;

namespace Mesh.Ingress.Tests.Api;

/// <summary><c>lb</c> and <c>affinity</c> over the HTTP API: set at creation, changed by PATCH (RemoteStore), shown; a refusal is 400 and changes nothing.</summary>
public sealed class BalancingApiTests
{
    [Fact]
    public async Task Lb_and_affinity_are_created_patched_and_shown_and_a_refused_patch_changes_nothing()
    {
        await using var api = await InMemoryApi.StartAsync();
        var remote = new RemoteStore(api.Http);
        var updated = await remote.UpdateServiceAsync("web", new ServiceUpdate { LoadBalancing = LoadBalancing.Maglev });
        Assert.Equal((LoadBalancing.Maglev, Affinity.None), (updated.LoadBalancing, updated.Affinity));
        var shown = await api.Http.GetStringAsync(new Uri("/v1/services/web", UriKind.Relative));
        Assert.Contains("\"lb\":\"maglev\",\"affinity\":\"none\"", shown, StringComparison.Ordinal);

        var before = await api.Store.GetStateAsync();
        using var refused = await api.Http.PatchAsJsonAsync("/v1/services/web", new ServiceUpdate { Affinity = Affinity.Cookie }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("affinity: cookie needs HTTP", (await refused.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Error, StringComparison.Ordinal);
        using var unknown = await api.Http.PatchAsync(new Uri("/v1/services/web", UriKind.Relative), new StringContent("{\"lb\":\"random\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Equal(before.Revision, (await api.Store.GetStateAsync()).Revision);

        var created = await remote.CreateServiceAsync(new ServiceSpec { Name = "shop", Routes = [ServiceRoute.Parse("shop.test/=80")], LoadBalancing = LoadBalancing.PowerOfTwo, Affinity = Affinity.Cookie });
        Assert.Equal((LoadBalancing.PowerOfTwo, Affinity.Cookie), (created.LoadBalancing, created.Affinity));
    }
}
