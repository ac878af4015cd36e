using System.Net;
using System.Net.Http.Json;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Tests.EndToEnd;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Api;

/// <summary>
/// Issue 9, at the API of the task's own node (composed as the daemon composes it): a namespace the node refuses is a
/// 400 naming <c>netnsPath</c> right away, and so is a resolv.conf outside the node's <c>--resolv-conf-root</c>;
/// nothing is stored. A real namespace stands for the ingress sandbox.
/// </summary>
public sealed class TaskPathApiTests : IAsyncLifetime
{
    private readonly string _sandbox = $"mpaths-api-{Environment.ProcessId}-sbx";
    private readonly EmbeddedStore _store = new(null, NullLogger<EmbeddedStore>.Instance);
    private WebApplication? _app;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var network = new NodeNetworkOptions { IngressSandbox = _sandbox };
        var options = new DaemonOptions { Node = "n1", AdvertiseAddress = "198.18.0.11", Network = network, ResolvConfRoots = ["/run/mesh/tasks"] };
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddSingleton<IClusterStore>(_store);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(new TaskNamespaceGuard(network));
        builder.Services.AddSingleton(new NodeStatus { Node = "n1", Store = "embedded", Dataplane = "nftables" });
        _app = builder.Build();
        _app.MapMeshApi();
        await _app.StartAsync();
        _http = _app.GetTestClient();
        await _store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await _store.RegisterNodeAsync(new NodeSpec { Name = "n2", AdvertiseAddress = "198.18.0.12" });
        await _store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new Discovery.Model.PublishedPort(8080, 80)] });
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _sandbox);
            await Shell.CheckedAsync("ip", "netns", "add", _sandbox);
        }
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app!.DisposeAsync();
        if (Environment.IsPrivilegedProcess)
        {
            await Shell.RunAsync("ip", "netns", "del", _sandbox);
        }
    }

    [LabFact]
    public async Task The_nodes_own_sandbox_is_refused_at_its_api_and_nothing_is_stored()
    {
        var before = await _store.GetStateAsync();

        foreach (var spelling in new[] { $"/run/netns/{_sandbox}", $"/var/run/netns/{_sandbox}" })
        {
            var error = await PostAsync(new TaskSpec { Service = "web", Node = "n1", NetnsPath = spelling });
            Assert.Equal("netnsPath", error.Field);
            Assert.Contains("the ingress sandbox", error.Error, StringComparison.Ordinal);
        }

        Assert.Equal("resolvConfPath", (await PostAsync(new TaskSpec { Service = "web", Node = "n1", ResolvConfPath = "/etc/netns/x/resolv.conf" })).Field);
        Assert.Same(before, await _store.GetStateAsync());

        // For another node the API cannot see the real object: that node checks it when it converges the task.
        using var other = await _http.PostAsJsonAsync("/v1/tasks", new TaskSpec { Service = "web", Node = "n2", NetnsPath = $"/run/netns/{_sandbox}" }, MeshJson.Options);
        Assert.Equal(HttpStatusCode.Created, other.StatusCode);
    }

    private async Task<ApiError> PostAsync(TaskSpec spec)
    {
        using var response = await _http.PostAsJsonAsync("/v1/tasks", spec, MeshJson.Options);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!;
    }
}
