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
}
