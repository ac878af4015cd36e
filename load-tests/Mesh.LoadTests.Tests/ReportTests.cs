using System.Text.Json;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Reporting;
using Mesh.LoadTests.Servers;
using Mesh.LoadTests.Steps;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Tests;

[Collection("timing")]
public class ReportTests
{
    private static async Task<(RunReport Report, IReadOnlyList<VariantOutcome> Outcomes)> SmallComparison()
    {
        var a = new FakeStep(TimeSpan.FromMilliseconds(1));
        var b = new FakeStep(TimeSpan.FromMilliseconds(1));
        var variants = new[] { new Variant("mesh", new ScenarioDefinition("mesh", a)), new Variant("direct", new ScenarioDefinition("direct", b)) };
        var options = new ExperimentOptions
        {
            Simulation = new ClosedLoop(4, Duration: TimeSpan.FromMilliseconds(800)),
            Rounds = 4,
            Warmup = TimeSpan.FromMilliseconds(50),
            RoundWarmup = TimeSpan.FromMilliseconds(20),
        };
        var outcomes = await new Experiment(new LoadRunner()).RunAsync(variants, options);
        var report = ReportBuilder.Build("http-compare", "test", outcomes, options, 2, DateTimeOffset.UtcNow,
            new Dictionary<string, string> { ["connections"] = "4" }, "test");
        return (report, outcomes);
    }

    [Fact]
    public async Task Comparison_interleaves_rounds_in_ABBA_order_and_reports_the_ratio()
    {
        var (report, outcomes) = await SmallComparison();
        Assert.All(outcomes, o => Assert.Equal(4, o.Rounds.Count));
        // round 0: mesh first; round 1: direct first; ...
        var order = outcomes.SelectMany(o => o.Rounds.Select(r => (o.Variant.Name, r.OffsetSeconds))).OrderBy(t => t.OffsetSeconds).Select(t => t.Name).ToArray();
        Assert.Equal(["mesh", "direct", "direct", "mesh", "mesh", "direct", "direct", "mesh"], order);
        var ratio = Assert.Single(report.Ratios);
        Assert.Equal(("mesh", "direct"), (ratio.Variant, ratio.Baseline));
        Assert.Equal(4, ratio.RoundRps.Count);
        Assert.InRange(ratio.Rps, 0.5, 2.0); // identical fakes
        Assert.True(Math.Abs(report.Variants[0].OkRps / report.Variants[1].OkRps - ratio.Rps) < 0.002);
        // each round ran ~200 ms (800 ms split over 4 rounds)
        Assert.All(report.Variants.SelectMany(v => v.Rounds), r => Assert.InRange(r.WallSeconds, 0.18, 0.4));
        Assert.All(report.Variants, v => Assert.True(v.Cpu.WallSeconds > 0));
        Assert.Equal(Environment.ProcessorCount, report.Machine.Cores);
    }

    [Fact]
    public async Task Json_round_trips_and_html_is_self_contained_with_svg_charts()
    {
        var (report, _) = await SmallComparison();
        report.Wrk.Add(new WrkReport { Variant = "mesh", Url = "http://x/", Arguments = ["-t1", "-c4"], Rps = 1234.5, P50Us = 100, OursRps = 1000 });
        var json = ReportBuilder.ToJson(report);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.Equal("http-compare", doc.RootElement.GetProperty("scenario").GetString());
            Assert.Equal(2, doc.RootElement.GetProperty("variants").GetArrayLength());
            Assert.True(doc.RootElement.GetProperty("variants")[0].GetProperty("latency").GetProperty("p99Us").GetDouble() > 0);
        }
        var back = ReportBuilder.FromJson(json);
        Assert.Equal(json, ReportBuilder.ToJson(back));

        // the histogram survives the trip and still answers percentiles
        var h = back.Variants[0].Histogram.ToHistogram();
        Assert.Equal(report.Variants[0].Requests, h.Count);
        Assert.Equal(report.Variants[0].Latency.P99Us, Math.Round(h.ValueAtPercentile(99) / 1000.0, 3));

        var html = HtmlReport.Render(back);
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.True(html.Split("<svg").Length - 1 >= 3, "throughput, latency and percentile charts");
        Assert.Contains("<polyline", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("http://cdn", html);
        Assert.DoesNotContain("https://", html);
        Assert.Contains("mesh/direct", html);
        // well-formed enough for an XML parser (every tag closed, entities escaped)
        var body = html["<!DOCTYPE html>\n".Length..].Replace("<meta charset=\"utf-8\">", "<meta charset=\"utf-8\"/>");
        System.Xml.Linq.XDocument.Parse(body);

        var md = MarkdownReport.Render(back);
        Assert.Contains("| mesh |", md);
        Assert.Contains("wrk cross-check", md);
        Assert.EndsWith("\n", md);
        var lastSection = md[md.LastIndexOf("## ", StringComparison.Ordinal)..];
        Assert.StartsWith("## Ratio", lastSection); // the ratio is printed last
    }

    [Fact]
    public void Saturated_generator_is_flagged()
    {
        var usage = new CpuUsage(WallSeconds: 10, ProcessCpuSeconds: 19, Cores: 2, MachineBusyFraction: 1);
        Assert.Equal(1.9, usage.GeneratorCores, 6);
        Assert.True(usage.Saturated(2));
        Assert.False(new CpuUsage(10, 10, 2, 0.5).Saturated(2));
        Assert.True(new CpuUsage(10, 10, 2, 0.5).Saturated(1)); // one core of budget, one core used
    }

    [Fact]
    public void Wrk_output_is_parsed()
    {
        const string output = """
            Running 5s test @ http://198.18.0.11:8080/
              1 threads and 16 connections
              Thread Stats   Avg      Stdev     Max   +/- Stdev
                Latency   654.21us  210.55us  12.34ms   91.20%
                Req/Sec    24.81k     1.02k   26.50k    78.00%
              Latency Distribution
                 50%  610.00us
                 75%  700.00us
                 90%  820.00us
                 99%    1.52ms
              123456 requests in 5.00s, 17.90MB read
              Socket errors: connect 0, read 2, write 0, timeout 1
              Non-2xx or 3xx responses: 4
            Requests/sec:  24690.12
            Transfer/sec:      3.58MB
            """;
        var r = new WrkReport();
        Wrk.Parse(output, r);
        Assert.Equal(24690.12, r.Rps);
        Assert.Equal(654.21, r.LatencyAvgUs);
        Assert.Equal(12340, r.LatencyMaxUs);
        Assert.Equal(610, r.P50Us);
        Assert.Equal(820, r.P90Us);
        Assert.Equal(1520, r.P99Us);
        Assert.Equal(123456, r.Requests);
        Assert.Equal(3, r.SocketErrors);
        Assert.Equal(4, r.Non2xx);
        Assert.Equal(["-t1", "-c16", "-d5s", "--latency", "--timeout", "2s", "-H", "Connection: close", "http://x/"],
            Wrk.Arguments(new Uri("http://x/"), 16, TimeSpan.FromSeconds(5), true, TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task Cli_http_compare_smoke_writes_all_three_reports()
    {
        await using var a = new TinyHttpServer();
        await using var b = new TinyHttpServer();
        var dir = Path.Combine(Path.GetTempPath(), "mesh-lt-" + Guid.NewGuid().ToString("N"));
        try
        {
            var stdout = Console.Out;
            using var captured = new StringWriter();
            Console.SetOut(captured);
            int code;
            try
            {
                code = await Cli.CommandLine.Build().Parse(["http-compare", "--a", a.Url.ToString(), "--b", b.Url.ToString(), "--names", "mesh,direct",
                    "--smoke", "--duration", "400ms", "--connections", "2", "--quiet", "--bind", "127.0.0.1", "--out", dir]).InvokeAsync();
            }
            finally
            {
                Console.SetOut(stdout);
            }
            Assert.Equal(0, code);
            Assert.True(File.Exists(Path.Combine(dir, "report.md")));
            Assert.Contains("<svg", await File.ReadAllTextAsync(Path.Combine(dir, "report.html")));
            var report = ReportBuilder.FromJson(await File.ReadAllTextAsync(Path.Combine(dir, "report.json")));
            Assert.Equal(["mesh", "direct"], report.Variants.Select(v => v.Name));
            Assert.All(report.Variants, v => Assert.Equal(2, v.Rounds.Count));
            Assert.All(report.Variants, v => Assert.Equal(0, v.Failed));
            Assert.Equal("127.0.0.1", report.Settings["bind"]);
            Assert.Contains("mesh/direct", captured.ToString());
            Assert.True(a.Requests > 0 && b.Requests > 0);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
