using System.Diagnostics.Metrics;
using Mesh.Ingress.Telemetry;

namespace Mesh.Ingress.Tests.Telemetry;

public class PrometheusMetricsTests
{
    [Fact]
    public void Counters_and_histograms_of_the_mesh_meter_render_per_tag_set_and_other_meters_are_ignored()
    {
        using var metrics = new PrometheusMetrics();
        using var meter = new Meter(MeshTelemetry.Name);
        using var other = new Meter("NotMesh");
        var syncs = meter.CreateCounter<long>("test.syncs", description: "Syncs");
        var duration = meter.CreateHistogram<double>("test.duration");
        other.CreateCounter<long>("test.ignored").Add(5);

        syncs.Add(2, new KeyValuePair<string, object?>("result", "ok"));
        syncs.Add(1, new KeyValuePair<string, object?>("result", "ok"));
        syncs.Add(1, new KeyValuePair<string, object?>("result", "er\"ror"));
        duration.Record(0.5);
        duration.Record(1.5);

        var text = metrics.Render();
        Assert.Contains("# TYPE test_syncs counter\n", text, StringComparison.Ordinal);
        Assert.Contains("test_syncs_total{result=\"ok\"} 3\n", text, StringComparison.Ordinal);
        Assert.Contains("test_syncs_total{result=\"er\\\"ror\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("test_duration_count 2\n", text, StringComparison.Ordinal);
        Assert.Contains("test_duration_sum 2\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("ignored", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Equal_tag_sets_share_a_series_whatever_their_boxes_and_a_measurement_allocates_nothing()
    {
        using var metrics = new PrometheusMetrics();
        using var meter = new Meter(MeshTelemetry.Name);
        var queries = meter.CreateCounter<long>("test.queries");
        var many = meter.CreateCounter<long>("test.many");
        queries.Add(1, new("rcode", "noerror"), new("port", 53));
        queries.Add(1, new("rcode", "noerror"), new("port", 53)); // another box of 53
        queries.Add(1, new("rcode", "nxdomain"), new("port", 53));
        many.Add(1, new("a", "1"), new("b", "2"), new("c", "3"), new("d", "4")); // beyond the cached shape
        many.Add(1, new("a", "1"), new("b", "2"), new("c", "3"), new("d", "4"));

        var text = metrics.Render();
        Assert.Contains("test_queries_total{rcode=\"noerror\",port=\"53\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("test_queries_total{rcode=\"nxdomain\",port=\"53\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("test_many_total{a=\"1\",b=\"2\",c=\"3\",d=\"4\"} 2\n", text, StringComparison.Ordinal);

        var rcode = new KeyValuePair<string, object?>("rcode", "noerror");
        var transport = new KeyValuePair<string, object?>("transport", "udp");
        queries.Add(1, rcode, transport);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            queries.Add(1, rcode, transport);
        }

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1000, $"{GC.GetAllocatedBytesForCurrentThread() - before} bytes for 1,000 measurements");
    }
}
