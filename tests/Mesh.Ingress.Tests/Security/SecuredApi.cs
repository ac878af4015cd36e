using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Security;

/// <summary>
/// The daemon's API as the daemon composes it (same listeners, same authentication, same endpoints) on a real
/// Kestrel: a TCP port on loopback and a unix socket, in front of an embedded store.
/// </summary>
public sealed class SecuredApi : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SecuredApi(WebApplication app, EmbeddedStore store, int port, string socket)
    {
        _app = app;
        Store = store;
        Port = port;
        Socket = socket;
    }

    public EmbeddedStore Store { get; }

    public int Port { get; }

    public string Socket { get; }

    public Uri Https => new($"https://127.0.0.1:{Port}/");

    public Uri Http => new($"http://127.0.0.1:{Port}/");

    public static async Task<SecuredApi> StartAsync(ApiSecurity security, string socketDirectory)
    {
        var store = new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance);
        await store.RegisterNodeAsync(new NodeSpec { Name = "mesh-n1", AdvertiseAddress = "198.18.0.11" });
        var port = Credentials.FreePort();
        var socket = Path.Combine(socketDirectory, "api.sock");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        ApiListeners.Configure(builder.WebHost, [new Uri($"tcp://127.0.0.1:{port}"), new Uri("unix://" + socket)], security);
        builder.Services.AddSingleton<IClusterStore>(store);
        builder.Services.AddSingleton(new NodeStatus { Node = "mesh-n1", Store = "embedded", Dataplane = "nftables" });
        var app = builder.Build();
        app.UseApiAuthentication(security, NullLogger.Instance);
        app.MapMeshApi();
        await app.StartAsync();
        return new SecuredApi(app, store, port, socket);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
