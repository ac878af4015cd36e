using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Security;
using Mesh.Ingress.Tests.Security;
using Mesh.Ingress.Ui;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Ui;

/// <summary>The API and the status page composed as the daemon composes them, in front of an embedded store holding node mesh-n1 and service web.</summary>
public sealed class StatusPageHost : IAsyncDisposable
{
    private StatusPageHost(WebApplication app, EmbeddedStore store, NodeStatus status, int port, string? socket)
    {
        App = app;
        Store = store;
        Status = status;
        Port = port;
        Socket = socket;
    }

    public WebApplication App { get; }

    public EmbeddedStore Store { get; }

    public NodeStatus Status { get; }

    public int Port { get; }

    public string? Socket { get; }

    public Uri Http => new($"http://127.0.0.1:{Port}/");

    public Uri Https => new($"https://127.0.0.1:{Port}/");

    /// <summary>In memory (TestServer) when <paramref name="security"/> is null; else real Kestrel on loopback TCP and a unix socket.</summary>
    public static async Task<StatusPageHost> StartAsync(StatusPageOptions? options = null, ApiSecurity? security = null, string? socketDirectory = null)
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.RegisterNodeAsync(new NodeSpec { Name = "mesh-n1", AdvertiseAddress = "198.18.0.11" });
        await store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
        var status = new NodeStatus { Node = "mesh-n1", Store = "embedded", Dataplane = "nftables" };
        status.Report(store.GetStateAsync().Result.Revision, null);

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var port = 0;
        string? socket = null;
        if (security is null)
        {
            builder.WebHost.UseTestServer();
        }
        else
        {
            port = Credentials.FreePort();
            socket = Path.Combine(socketDirectory!, "api.sock");
            ApiListeners.Configure(builder.WebHost, [new Uri($"tcp://127.0.0.1:{port}"), new Uri("unix://" + socket)], security);
        }

        builder.Services.AddSingleton<IClusterStore>(store);
        builder.Services.AddSingleton(status);
        builder.Services.AddSingleton(options ?? new StatusPageOptions());
        var app = builder.Build();
        app.UseApiAuthentication(security ?? ApiSecurity.None, NullLogger.Instance);
        app.MapMeshApi();
        app.MapMeshUi();
        await app.StartAsync();
        return new StatusPageHost(app, store, status, port, socket);
    }

    public async ValueTask DisposeAsync() => await App.DisposeAsync();
}
