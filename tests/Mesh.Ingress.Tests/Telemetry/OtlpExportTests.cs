using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using Mesh.Ingress.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Tests.Telemetry;

public sealed class OtlpExportTests
{
    [Fact]
    public async Task Metrics_and_traces_of_the_mesh_sources_reach_an_otlp_http_collector()
    {
        var received = new ConcurrentBag<(string Path, string? ContentType, long Length)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        await using var collector = builder.Build();
        collector.Run(async ctx =>
        {
            using var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body);
            received.Add((ctx.Request.Path.Value!, ctx.Request.ContentType, body.Length));
            ctx.Response.StatusCode = 200;
        });
        await collector.StartAsync();
        var address = collector.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        using (var export = new OtlpExport(new Uri(address), TimeSpan.FromMinutes(5)))
        {
            using var meter = new Meter(MeshTelemetry.Name);
            meter.CreateCounter<long>("test.otlp").Add(3);
            using var source = new ActivitySource(MeshTelemetry.Name);
            using (source.StartActivity("test.sync"))
            {
            }

            Assert.True(export.Flush(TimeSpan.FromSeconds(10)));
        }

        Assert.Contains(received, r => r.Path == "/v1/metrics" && r.ContentType == "application/x-protobuf" && r.Length > 0);
        Assert.Contains(received, r => r.Path == "/v1/traces" && r.ContentType == "application/x-protobuf" && r.Length > 0);
        await collector.StopAsync();
    }
}
