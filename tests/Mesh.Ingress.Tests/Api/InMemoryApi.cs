using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Api;

/// <summary>The API in memory over an embedded store, with node n1 registered and service web publishing 8080:80.</summary>
internal sealed class InMemoryApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private InMemoryApi(WebApplication app, EmbeddedStore store)
    {
        _app = app;
        Store = store;
        Http = app.GetTestClient();
    }

    public EmbeddedStore Store { get; }

    public HttpClient Http { get; }

    public static async Task<InMemoryApi> StartAsync()
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddSingleton<IClusterStore>(store);
        builder.Services.AddSingleton(new NodeStatus { Node = "n1", Store = "embedded", Dataplane = "nftables" });
        var app = builder.Build();
        app.MapMeshApi();
        await app.StartAsync();
        await store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        return new InMemoryApi(app, store);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.DisposeAsync();
    }
}
