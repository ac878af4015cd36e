using System.Net;
using System.Text.Json;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Ingress.Tests.Trace;

/// <summary>GET /v1/trace's input checks: each bad parameter is a 400 naming it, before any kernel is read.</summary>
public sealed class TraceEndpointTests : IAsyncLifetime
{
    private WebApplication? _app;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseTestServer();
        builder.Services.AddSingleton<IClusterStore>(new EmbeddedStore(null, NullLogger<EmbeddedStore>.Instance));
        builder.Services.AddSingleton(new NodeStatus { Node = "n1", Store = "embedded", Dataplane = "nftables" });
        _app = builder.Build();
        _app.MapMeshApi();
        await _app.StartAsync();
        _http = _app.GetTestClient();
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app!.DisposeAsync();
    }

    [Theory]
    [InlineData("", "proto")]
    [InlineData("?proto=icmp&addr=198.18.0.13&port=8080", "proto")]
    [InlineData("?proto=tcp&port=8080", "addr")]
    [InlineData("?proto=tcp&addr=web&port=8080", "addr")]
    [InlineData("?proto=tcp&addr=198.18.0.13", "port")]
    [InlineData("?proto=tcp&addr=198.18.0.13&port=8080x", "port")]
    [InlineData("?proto=tcp&addr=198.18.0.13&port=8080&port=8081", "port")]
    [InlineData("?proto=tcp&addr=198.18.0.13&port=8080&from=me", "from")]
    [InlineData("?proto=tcp&addr=198.18.0.13&port=8080&node=n2", "node")]
    [InlineData("?proto=http&addr=198.18.0.13&port=80", "host")]
    [InlineData("?proto=http&addr=198.18.0.13&port=80&host=web.test&path=x", "path")]
    [InlineData("?proto=http&addr=198.18.0.13&port=80&host=web.test&host=b.test", "host")]
    [InlineData("?proto=tcp&addr=198.18.0.13&port=8080&host=web.test", "host")]
    [InlineData("?proto=udp&addr=198.18.0.13&port=8080&path=/", "path")]
    public async Task A_bad_parameter_is_a_400_naming_it(string query, string field)
    {
        using var response = await _http.GetAsync(new Uri("/v1/trace" + query, UriKind.Relative));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonSerializer.Deserialize<ApiError>(await response.Content.ReadAsStringAsync(), MeshJson.Options)!;
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public async Task An_api_without_a_node_to_read_says_so()
    {
        using var response = await _http.GetAsync(new Uri("/v1/trace?proto=tcp&addr=198.18.0.13&port=8080", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotImplemented, response.StatusCode);
    }
}
