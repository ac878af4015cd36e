using System.Diagnostics;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Tests.Daemon;
using Mesh.Ingress.Tests.Fuzz;

namespace Mesh.Ingress.Tests.Telemetry;

/// <summary>
/// <c>GET /metrics</c> of a real daemon process (in a namespace of its own, as the fuzz run starts it), read as a
/// Prometheus server reads it: well-formed text, every sample in a declared family, histograms with real buckets
/// (cumulative, ending at +Inf, +Inf equal to _count), and the families the README documents.
/// </summary>
public sealed class MetricsScrapeTests
{
    [IsolatedDaemonFact]
    public async Task A_daemon_serves_prometheus_text_with_real_histograms_and_the_documented_families()
    {
        await using var daemon = await FuzzDaemon.StartAsync(TimeSpan.FromSeconds(60));
        using var http = ApiClientFactory.Create("unix://" + daemon.SocketPath, TimeSpan.FromSeconds(10));

        // The daemon's reconciler fails there (no overlay bridge in its empty namespace) and retries: each pass is timed.
        PrometheusText scrape;
        string text;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using var response = await http.GetAsync(new Uri("/metrics", UriKind.Relative));
            response.EnsureSuccessStatusCode();
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
            text = await response.Content.ReadAsStringAsync();
            scrape = PrometheusText.Parse(text);
            if (scrape.Samples.Any(s => s.Name == "mesh_reconcile_duration_seconds_count" && s.Value >= 2) || clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                break;
            }

            await Task.Delay(200);
        }

        foreach (var sample in new[] { "mesh_reconcile_syncs_total", "mesh_reconcile_duration_seconds_bucket", "dotnet_gc_collections_total", "process_cpu_time_seconds_total" })
        {
            Assert.True(scrape.Samples.Any(s => s.Name == sample), $"no {sample} in:\n{text}");
        }

        Assert.Equal("histogram", scrape.Types["mesh_reconcile_duration_seconds"]);
        Assert.Contains(scrape.Samples, s => s.Name == "mesh_reconcile_syncs_total" && s.Labels.GetValueOrDefault("result") == "error" && s.Value >= 1);
        Assert.All(scrape.Samples, s => Assert.True(scrape.FamilyOf(s.Name) is not null, $"{s.Name} has no # TYPE"));

        var histograms = scrape.Types.Where(t => t.Value == "histogram").Select(t => t.Key).ToList();
        Assert.Contains("mesh_reconcile_duration_seconds", histograms);
        foreach (var family in histograms)
        {
            var buckets = scrape.Samples.Where(s => s.Name == family + "_bucket").ToList();
            Assert.NotEmpty(buckets);
            foreach (var series in buckets.GroupBy(b => b.Key(except: "le")))
            {
                var bounds = series.Select(b => (Le: PrometheusText.TryParseValue(b.Labels["le"], out var le) ? le : throw new FormatException($"le {b.Labels["le"]}"), b.Value)).ToList();
                Assert.True(bounds.Zip(bounds.Skip(1)).All(p => p.First.Le < p.Second.Le), $"{family}{{{series.Key}}}: le not increasing");
                Assert.True(bounds.Zip(bounds.Skip(1)).All(p => p.First.Value <= p.Second.Value), $"{family}{{{series.Key}}}: buckets not cumulative");
                Assert.Equal(double.PositiveInfinity, bounds[^1].Le);
                var count = scrape.Samples.Single(s => s.Name == family + "_count" && s.Key() == series.Key);
                Assert.Equal(count.Value, bounds[^1].Value);
                Assert.Single(scrape.Samples, s => s.Name == family + "_sum" && s.Key() == series.Key);
            }
        }

        Assert.True(scrape.Samples.Single(s => s.Name == "mesh_reconcile_duration_seconds_count").Value >= 2, text);

        // The view that limits its series (MetricLimits) keeps the instrument's advised buckets.
        var les = scrape.Samples.Where(s => s.Name == "mesh_reconcile_duration_seconds_bucket").Select(s => s.Labels["le"]).Where(le => le != "+Inf")
            .Select(le => PrometheusText.TryParseValue(le, out var v) ? v : double.NaN).ToList();
        Assert.Equal(Mesh.Ingress.Telemetry.MeshTelemetry.ReconcileBuckets, les);
    }
}
