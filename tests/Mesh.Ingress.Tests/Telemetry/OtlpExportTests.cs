using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Mesh.Ingress.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>
/// The daemon's registration (<see cref="TelemetryRegistration.AddMeshTelemetry"/>) with an OTLP endpoint, in a host
/// of its own: the "Mesh" meter's metrics and spans — an API request's span included — reach a local OTLP/HTTP receiver
/// as protobuf. The receiver does not decode protobuf (no OpenTelemetry.Proto here); names and attribute keys are
/// plain UTF-8 strings inside it, which is what the assertions look for.
/// </summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task Metrics_and_spans_of_the_mesh_sources_and_api_requests_reach_an_otlp_http_receiver()
    {
        var received = new ConcurrentBag<(string Path, string? ContentType, byte[] Body)>();
        await using var collector = Loopback();
        collector.Run(async ctx =>
        {
            using var body = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(body);
            received.Add((ctx.Request.Path.Value!, ctx.Request.ContentType, body.ToArray()));
            ctx.Response.StatusCode = 200;
        });
        await collector.StartAsync();

        await using var daemon = Loopback(b => b.Services.AddMeshTelemetry(new TelemetryOptions("node-x", new Uri(Address(collector)), TimeSpan.FromMinutes(5))));
        daemon.MapGet("/v1/ping", () => "pong");
        await daemon.StartAsync();

        using var http = new HttpClient { BaseAddress = new Uri(Address(daemon)) };
        Assert.Equal("pong", await http.GetStringAsync(new Uri("/v1/ping", UriKind.Relative)));
        using var meter = new Meter(MeshTelemetry.Name);
        meter.CreateCounter<long>("test.otlp").Add(3);
        using var source = new ActivitySource(MeshTelemetry.Name);
        using (var span = source.StartActivity(MeshTelemetry.ReconcileSpan))
        {
            span?.SetTag(MeshTelemetry.RevisionAttribute, 42L);
        }

        Assert.True(daemon.Services.GetRequiredService<TracerProvider>().ForceFlush(10_000));
        // Not asserted: the provider's other reader, the Prometheus exporter, only collects when scraped and reports
        // a flush as failed; what the OTLP reader sent is checked below.
        daemon.Services.GetRequiredService<MeterProvider>().ForceFlush(10_000);

        var traces = string.Concat(received.Where(r => r.Path == "/v1/traces" && r.ContentType == "application/x-protobuf").Select(r => Encoding.UTF8.GetString(r.Body)));
        var metrics = string.Concat(received.Where(r => r.Path == "/v1/metrics" && r.ContentType == "application/x-protobuf").Select(r => Encoding.UTF8.GetString(r.Body)));
        Assert.Contains(MeshTelemetry.ReconcileSpan, traces, StringComparison.Ordinal);
        Assert.Contains(MeshTelemetry.RevisionAttribute, traces, StringComparison.Ordinal);
        Assert.Contains("GET /v1/ping", traces, StringComparison.Ordinal);
        Assert.Contains("node-x", traces, StringComparison.Ordinal); // service.instance.id
        Assert.Contains("test.otlp", metrics, StringComparison.Ordinal);
        Assert.Contains("process.cpu.time", metrics, StringComparison.Ordinal);
        await daemon.StopAsync();
        await collector.StopAsync();
    }

    private static WebApplication Loopback(Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        configure?.Invoke(builder);
        return builder.Build();
    }

    private static string Address(WebApplication app) => app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
}
