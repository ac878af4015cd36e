using System.Diagnostics;
using System.Diagnostics.Metrics;
using Mesh.Ingress.Telemetry;

namespace Mesh.Ingress.Http;

/// <summary>The L7 entry's instruments on the <c>Mesh</c> meter: per route and backend (task), requests and latency.</summary>
public sealed class HttpEntryMetrics
{
    /// <summary>From a fast backend on the overlay (~1 ms) to a slow one.</summary>
    public static IReadOnlyList<double> LatencyBuckets { get; } = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public HttpEntryMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeshTelemetry.Name);
        Requests = meter.CreateCounter<long>("mesh.http.requests", description: "Requests through the L7 entry, by route, backend and status code");
        Duration = meter.CreateHistogram<double>("mesh.http.request.duration", unit: "s", description: "Time from a request's arrival to its response's end through the L7 entry",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
    }

    public Counter<long> Requests { get; }

    public Histogram<double> Duration { get; }

    public void Record(string route, string service, string backend, int status, double seconds)
    {
        var tags = new TagList
        {
            { "route", route },
            { "service", service },
            { "backend", backend },
            { "status_code", status },
        };
        Requests.Add(1, tags);
        Duration.Record(seconds, tags);
    }
}
