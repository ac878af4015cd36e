using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ClusterState = Mesh.Discovery.Model.ClusterState;

namespace Mesh.Ingress.Tests.Http;

/// <summary>
/// <c>--backend-protocol h2c</c> end to end over loopback: YARP configured by <see cref="HttpRouteTable"/> in front of a
/// real Kestrel backend whose only endpoint is HTTP/2 without TLS (what a gRPC server is), the client speaking
/// HTTP/1.1 to the entry. The backend answers with the protocol it saw; an http1 service to the same backend is refused by it (400),
/// which is what shows the cluster's version setting is what made the difference.
/// </summary>
public sealed class H2cBackendTests
{
    [Fact]
    public async Task An_h2c_service_reaches_an_http2_only_backend_over_http2_and_an_http1_service_cannot()
    {
        var backendPort = FreePort();
        await using var backend = await StartBackendAsync(backendPort);
        var state = State(backendPort);
        var entryPort = FreePort();
        await using var entry = await StartEntryAsync(entryPort, state);
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };

        using var h2c = await client.SendAsync(Get(entryPort, "grpc.test"));
        using var http1 = await client.SendAsync(Get(entryPort, "plain.test"));

        Assert.Equal(HttpStatusCode.OK, h2c.StatusCode);
        Assert.Equal("HTTP/2", await h2c.Content.ReadAsStringAsync());
        // Kestrel answers an HTTP/1.1 request on its HTTP/2-only endpoint with its own 400, which YARP passes on.
        Assert.Equal(HttpStatusCode.BadRequest, http1.StatusCode);
    }

    [Fact]
    public void The_option_is_stored_validated_and_needs_a_route()
    {
        var state = State(8080);
        Assert.Equal(BackendProtocol.H2c, state.Services.Single(s => s.Name == "grpc").BackendProtocol);
        Assert.Equal(BackendProtocol.Http1, state.Services.Single(s => s.Name == "plain").BackendProtocol);
        var json = System.Text.Json.JsonSerializer.Serialize(state.Services.Single(s => s.Name == "grpc"), MeshJson.Options);
        Assert.Contains("\"backendProtocol\":\"h2c\"", json, StringComparison.Ordinal);
        Assert.Equal(BackendProtocol.H2c, System.Text.Json.JsonSerializer.Deserialize<ClusterService>(json, MeshJson.Options)!.BackendProtocol);

        var noRoute = Assert.Throws<ValidationException>(() => StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "g", Ports = [new PublishedPort(9000, 80)], BackendProtocol = BackendProtocol.H2c }));
        Assert.Contains("needs a --route", noRoute.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<ValidationException>(() => BackendProtocols.Parse("--backend-protocol", "h3"));
        Assert.Contains("'h3' is not http1 or h2c", bad.Message, StringComparison.Ordinal);
        Assert.Equal(BackendProtocol.H2c, BackendProtocols.Parse("--backend-protocol", "H2C"));
        Assert.Throws<ValidationException>(() => StateTransitions.CreateService(ClusterState.Empty, new ServiceSpec { Name = "g", Routes = [ServiceRoute.Parse("g.test/=80")], BackendProtocol = (BackendProtocol)7 }));

        // A stored service is checked the same way (etcd, a joined node's store: nothing read is trusted).
        var grpc = state.Services.Single(s => s.Name == "grpc");
        ObjectRules.Service(grpc, ReservedPorts.Default);
        var stored = Assert.Throws<ValidationException>(() => ObjectRules.Service(grpc with { Routes = [] }, ReservedPorts.Default));
        Assert.Contains("backendProtocol", stored.Message, StringComparison.Ordinal);
    }

    /// <summary>Two services on the same backend, one h2c and one not; their task's ingress address is the loopback.</summary>
    private static ClusterState State(int backendPort)
    {
        var state = StateTransitions.RegisterNode(ClusterState.Empty, new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "grpc", Routes = [ServiceRoute.Parse($"grpc.test/={backendPort}")], BackendProtocol = BackendProtocol.H2c }).State;
        state = StateTransitions.CreateService(state, new ServiceSpec { Name = "plain", Routes = [ServiceRoute.Parse($"plain.test/={backendPort}")] }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "grpc", Node = "n1" }).State;
        state = StateTransitions.AddTask(state, new TaskSpec { Service = "plain", Node = "n1" }).State;
        var loopback = new Dictionary<string, string> { [OverlayNetwork.IngressName] = "127.0.0.1" };
        return state with { Tasks = state.Tasks.Select(t => t with { Addresses = loopback }).ToList() };
    }

    private static HttpRequestMessage Get(int port, string host)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"http://127.0.0.1:{port}/"));
        request.Headers.Host = host;
        return request;
    }

    private static async Task<WebApplication> StartBackendAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        app.Run(ctx => ctx.Response.WriteAsync(ctx.Request.Protocol));
        await app.StartAsync();
        return app;
    }

    private static async Task<WebApplication> StartEntryAsync(int port, ClusterState state)
    {
        var (routes, clusters) = HttpRouteTable.Build(state);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        builder.Services.AddReverseProxy().LoadFromMemory(routes, clusters);
        var app = builder.Build();
        app.MapReverseProxy();
        await app.StartAsync();
        return app;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
