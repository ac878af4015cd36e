using System.Diagnostics.Metrics;
using Mesh.Discovery.Dns;
using Mesh.Discovery.Store;
using Mesh.Ingress.Telemetry;
using Mesh.Ingress.Telemetry.L4;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Mesh.Ingress.Tests.Telemetry;

public sealed class MetricLimitsTests
{
    [Fact]
    public void Every_instrument_given_the_small_limit_is_one_the_daemon_really_publishes()
    {
        using var factory = new TestMeterFactory();
        var published = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == MeshTelemetry.Name)
                {
                    lock (published)
                    {
                        published.Add(instrument.Name);
                    }
                }
            },
        };
        listener.Start();
        _ = new MeshTelemetry(factory);
        _ = new DnsMetrics(factory);
        _ = new StoreMetrics(factory);

        Assert.Empty(MetricLimits.BoundedMeshInstruments.Except(published));
    }

    [Fact]
    public void Fixed_tag_instruments_get_the_small_limit_the_per_backend_ones_their_room_and_the_rest_the_default()
    {
        using var mesh = new Meter(MeshTelemetry.Name);
        using var runtime = new Meter("OpenTelemetry.Instrumentation.Runtime");

        Assert.Equal(MetricLimits.Bounded, MetricLimits.For(mesh.CreateCounter<long>("mesh.dns.queries"), 10_000)?.CardinalityLimit);
        Assert.Equal(MetricLimits.Bounded, MetricLimits.For(mesh.CreateHistogram<double>("mesh.reconcile.duration"), 10_000)?.CardinalityLimit);
        Assert.Equal(MetricLimits.Bounded, MetricLimits.For(runtime.CreateCounter<long>("dotnet.gc.collections"), 10_000)?.CardinalityLimit);
        Assert.Equal(L4BackendMetrics.SeriesLimit(250), MetricLimits.For(mesh.CreateCounter<long>(L4BackendMetrics.InstrumentPrefix + "packets"), 250)?.CardinalityLimit);
        // Tags that name a backend or task: the SDK's default, not a limit that would fold them into one overflow series.
        Assert.Null(MetricLimits.For(mesh.CreateCounter<long>("mesh.http.requests"), 10_000));
        Assert.Null(MetricLimits.For(mesh.CreateCounter<long>("mesh.reconcile.kernel_changes"), 10_000));
    }

    [Fact]
    public void Through_the_sdk_a_bounded_stream_keeps_every_series_up_to_its_limit_and_folds_only_the_ones_past_it()
    {
        var exported = new List<Metric>();
        using var mesh = new Meter(MeshTelemetry.Name);
        var queries = mesh.CreateCounter<long>("mesh.dns.queries");
        using var provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(MeshTelemetry.Name)
            .AddView(instrument => MetricLimits.For(instrument, 10))
            .AddReader(new BaseExportingMetricReader(new CollectingExporter(exported)))
            .Build();

        // Every series DNS can make (19 rcode names × 2 transports), then more distinct values than the limit allows.
        for (var i = 0; i < MetricLimits.Bounded + 20; i++)
        {
            queries.Add(1, new KeyValuePair<string, object?>("rcode", $"R{i}"), new KeyValuePair<string, object?>("transport", "udp"));
        }

        provider.ForceFlush();
        var points = new List<MetricPoint>();
        foreach (var metric in exported.Where(m => m.Name == "mesh.dns.queries"))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                points.Add(point);
            }
        }

        static bool Overflow(MetricPoint p)
        {
            foreach (var tag in p.Tags)
            {
                if (tag.Key == "otel.metric.overflow")
                {
                    return true;
                }
            }

            return false;
        }

        var named = points.Where(p => !Overflow(p)).ToList();
        Assert.InRange(named.Count, MetricLimits.Bounded - 2, MetricLimits.Bounded);
        Assert.Equal(MetricLimits.Bounded + 20, points.Sum(p => p.GetSumLong()));
        Assert.Single(points, Overflow);
    }

    private sealed class CollectingExporter(List<Metric> exported) : BaseExporter<Metric>
    {
        public override ExportResult Export(in Batch<Metric> batch)
        {
            foreach (var metric in batch)
            {
                exported.Add(metric);
            }

            return ExportResult.Success;
        }
    }
}
