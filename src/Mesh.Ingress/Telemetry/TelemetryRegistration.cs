using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Mesh.Ingress.Telemetry;

/// <summary>
/// What the daemon exports: its node name (the service instance), optionally an OTLP/HTTP collector, and how many
/// backends the per-backend L4 series cover (<see cref="L4.L4BackendMetrics"/> must be given the same number).
/// </summary>
public sealed record TelemetryOptions(string Node, Uri? OtlpEndpoint, TimeSpan OtlpExportInterval, int L4MaxBackends = L4.L4BackendMetrics.DefaultMaxBackends);

/// <summary>
/// OpenTelemetry the usual way (OpenTelemetry.Extensions.Hosting): one meter provider — the "Mesh" meter, the .NET
/// runtime's and the process's instruments — read by the Prometheus exporter at <c>/metrics</c> and, with an
/// endpoint, pushed over OTLP; one tracer provider for the "Mesh" activity source, exported over OTLP only (without a
/// collector no span is sampled, so spans cost nothing). Both live and die with the host.
/// </summary>
public static class TelemetryRegistration
{
    public const string MetricsPath = "/metrics";

    public static IServiceCollection AddMeshTelemetry(this IServiceCollection services, TelemetryOptions options)
    {
        services.AddSingleton<MeshTelemetry>();
        services.AddTransient<IStartupFilter, RequestTracing.StartupFilter>();
        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("mesh", serviceInstanceId: options.Node))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(MeshTelemetry.Name)
                    .AddView(instrument => MetricLimits.For(instrument, options.L4MaxBackends))
                    .AddRuntimeInstrumentation()
                    .AddProcessInstrumentation()
                    .AddPrometheusExporter(ConfigurePrometheus);
                if (options.OtlpEndpoint is { } endpoint)
                {
                    metrics.AddOtlpExporter((exporter, reader) =>
                    {
                        Otlp(exporter, endpoint, "v1/metrics");
                        reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.OtlpExportInterval.TotalMilliseconds;
                    });
                }
            })
            .WithTracing(tracing =>
            {
                if (options.OtlpEndpoint is { } endpoint)
                {
                    tracing.AddSource(MeshTelemetry.Name).AddOtlpExporter(exporter => Otlp(exporter, endpoint, "v1/traces"));
                }
            });
        return services;
    }

    /// <summary><c>GET /metrics</c> in Prometheus' text format, behind the API's listeners and authentication.</summary>
    public static IEndpointConventionBuilder MapMeshMetrics(this IEndpointRouteBuilder app) => app.MapPrometheusScrapingEndpoint(MetricsPath);

    /// <summary>
    /// The scrape as a Prometheus server reads it: without the <c>otel_scope_*</c> labels on every series (one meter
    /// per name here, so they say nothing), without <c>target_info</c> (the scraper labels each target itself; it more
    /// than doubled a small scrape in dns-bench), and fresh on every scrape (the exporter's default caches it for
    /// 300 ms). Public so dns-bench measures the exporter exactly as the daemon configures it.
    /// </summary>
    public static void ConfigurePrometheus(PrometheusAspNetCoreOptions prometheus)
    {
        prometheus.ScrapeEndpointPath = MetricsPath;
        prometheus.ScopeInfoEnabled = false;
        prometheus.TargetInfoEnabled = false;
        prometheus.ScrapeResponseCacheDurationMilliseconds = 0;
    }

    private static void Otlp(OtlpExporterOptions exporter, Uri endpoint, string path)
    {
        exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
        exporter.Endpoint = new Uri(endpoint, path);
    }
}
