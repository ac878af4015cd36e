using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Api;
using Mesh.Ingress.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Mesh.Ingress.Tests.Api;

/// <summary>
/// Oversized requests against the API over real TCP (Kestrel on loopback, as the daemon's <c>--api tcp://</c>):
/// refused with 413 before the body is read. The server's own time (request in → answer out) must be under 100 ms;
/// what the client sees also includes pushing its megabytes into the socket, which depends on the machine's load.
/// </summary>
public sealed class ApiBodyLimitTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly EmbeddedStore _store = new(null, NullLogger<EmbeddedStore>.Instance);
    private readonly System.Collections.Concurrent.ConcurrentQueue<TimeSpan> _serverTimes = new();
    private WebApplication? _app;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSingleton<IClusterStore>(_store);
        builder.Services.AddSingleton(new NodeStatus { Node = "n1", Store = "embedded", Dataplane = "nftables" });
        _app = builder.Build();
        _app.Use(async (ctx, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            ctx.Response.OnStarting(() =>
            {
                _serverTimes.Enqueue(Stopwatch.GetElapsedTime(started));
                return Task.CompletedTask;
            });
            await next(ctx);
        });
        _app.MapMeshApi();
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        _http = new HttpClient { BaseAddress = new Uri(address) };
        await _store.RegisterNodeAsync(new NodeSpec { Name = "n1", AdvertiseAddress = "198.18.0.11" });
        await _store.CreateServiceAsync(new ServiceSpec { Name = "web", Ports = [new PublishedPort(8080, 80)] });
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app!.DisposeAsync();
    }

    [Fact]
    public async Task Sixty_thousand_aliases_or_all_131070_ports_get_413_in_under_100_ms_and_change_nothing()
    {
        var before = await _store.GetStateAsync();
        var aliases = Encoding.UTF8.GetBytes(ApiTests.Aliases(60_000));
        var ports = Encoding.UTF8.GetBytes(ApiTests.Ports(1, 65_535, udpToo: true));
        Assert.True(aliases.Length > Limits.MaxRequestBodyBytes);
        using (await _http.PostAsync(new Uri("/v1/services", UriKind.Relative), ApiTests.JsonBody("{\"name\":\"-\"}"))) { } // warm up the route and the connection

        for (var round = 0; round < 2; round++) // the first round pays for JIT compilation
        {
            foreach (var body in new[] { aliases, ports })
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new("application/json");
                _serverTimes.Clear();
                var clock = Stopwatch.StartNew();
                using var response = await _http.PostAsync(new Uri("/v1/services", UriKind.Relative), content);
                var elapsed = clock.Elapsed;
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
                Assert.Equal("body", (await response.Content.ReadFromJsonAsync<ApiError>(MeshJson.Options))!.Field);
                var server = Assert.Single(_serverTimes);
                if (round == 1)
                {
                    output.WriteLine($"{body.Length:N0}-byte body over TCP: {(int)response.StatusCode}, server {server.TotalMilliseconds:0.0} ms, client {elapsed.TotalMilliseconds:0.0} ms");
                    Assert.True(server < TimeSpan.FromMilliseconds(100), $"{body.Length} bytes refused by the server after {server.TotalMilliseconds} ms");
                    Assert.True(elapsed < TimeSpan.FromSeconds(2), $"{body.Length} bytes: the client waited {elapsed.TotalMilliseconds} ms");
                }
            }
        }

        // Without a declared length (chunked), the body is read only up to the cap.
        using var chunked = new StreamContent(new MemoryStream(aliases));
        chunked.Headers.ContentType = new("application/json");
        using var streamed = await _http.PostAsync(new Uri("/v1/tasks", UriKind.Relative), chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamed.StatusCode);

        Assert.Same(before, await _store.GetStateAsync());
    }
}
