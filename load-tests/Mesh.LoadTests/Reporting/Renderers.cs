using System.Globalization;
using System.Net;
using System.Text;

namespace Mesh.LoadTests.Reporting;

internal static class Fmt
{
    public static readonly CultureInfo C = CultureInfo.InvariantCulture;

    public static string Us(double us) =>
        us >= 1_000_000 ? (us / 1_000_000).ToString("0.00", C) + " s"
        : us >= 1000 ? (us / 1000).ToString("0.00", C) + " ms"
        : us.ToString("0.0", C) + " µs";

    public static string N(double v, string format = "0") => v.ToString(format, C);
    public static string Pct(double f) => (f * 100).ToString("0.0", C) + "%";
}

/// <summary>Markdown summary; the comparison ratio comes last so it is what a terminal shows at the bottom.</summary>
public static class MarkdownReport
{
    public static string Render(RunReport r)
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# Load test: {r.Scenario}");
        sb.AppendLine();
        if (r.Description.Length > 0) sb.AppendLine(r.Description).AppendLine();
        sb.AppendLine(CultureInfo.InvariantCulture, $"- started: {r.StartedUtc:u}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- machine: {r.Machine.Host}, {r.Machine.Cores} cores, {r.Machine.Os}, kernel {r.Machine.Kernel}, {r.Machine.Runtime}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- generator core budget: {Fmt.N(r.Machine.GeneratorCoreBudget, "0.##")} (flagged as saturated above 90% of it)");
        foreach (var kv in r.Settings) sb.AppendLine(CultureInfo.InvariantCulture, $"- {kv.Key}: {kv.Value}");
        sb.AppendLine(CultureInfo.InvariantCulture, $"- command: `{r.CommandLine}`");
        sb.AppendLine();

        sb.AppendLine("## Results");
        sb.AppendLine();
        sb.AppendLine("| variant | target | requests | failed | req/s (ok) | p50 | p90 | p99 | p99.9 | max | generator CPU | machine busy |");
        sb.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var v in r.Variants)
        {
            var l = v.Latency;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {v.Name} | {v.Target} | {v.Requests} | {v.Failed} | {Fmt.N(v.OkRps, "0.0")} | {Fmt.Us(l.P50Us)} | {Fmt.Us(l.P90Us)} | {Fmt.Us(l.P99Us)} | {Fmt.Us(l.P999Us)} | {Fmt.Us(l.MaxUs)} | {Fmt.N(v.Cpu.GeneratorCores, "0.00")} cores ({Fmt.Pct(v.Cpu.GeneratorFraction)}){(v.Cpu.Saturated ? " **SATURATED**" : "")} | {(v.Cpu.MachineBusyFraction is { } m ? Fmt.Pct(m) : "?")} |");
        }
        sb.AppendLine();
        sb.AppendLine("Latency is measured from each request's intended start (open loop: the schedule, so a stalled target is charged for every send it delayed).");
        if (r.Variants.Any(v => v.SendLag.Count > 0 && v.SendLag.MaxUs > 0))
        {
            sb.AppendLine();
            sb.AppendLine("| variant | service time p50 | p99 | max | send lag p50 | p99 | max | scheduled | unfinished |");
            sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var v in r.Variants)
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {v.Name} | {Fmt.Us(v.ServiceTime.P50Us)} | {Fmt.Us(v.ServiceTime.P99Us)} | {Fmt.Us(v.ServiceTime.MaxUs)} | {Fmt.Us(v.SendLag.P50Us)} | {Fmt.Us(v.SendLag.P99Us)} | {Fmt.Us(v.SendLag.MaxUs)} | {v.Scheduled} | {v.Unfinished} |");
        }
        sb.AppendLine();

        sb.AppendLine("## Statuses and errors");
        sb.AppendLine();
        foreach (var v in r.Variants)
        {
            var parts = v.Statuses.Select(kv => $"`{kv.Key}` {kv.Value}")
                .Concat(v.Errors.Select(kv => $"error `{kv.Key}` {kv.Value}"));
            sb.AppendLine(CultureInfo.InvariantCulture, $"- {v.Name}: {string.Join(", ", parts.DefaultIfEmpty("none"))}");
        }
        sb.AppendLine();

        if (r.Variants.Any(v => v.Rounds.Count > 1))
        {
            sb.AppendLine("## Rounds (interleaved)");
            sb.AppendLine();
            sb.AppendLine("| round | variant | at | req/s (ok) | p50 | p99 | failed | generator CPU |");
            sb.AppendLine("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
            foreach (var (v, round) in r.Variants.SelectMany(v => v.Rounds.Select(x => (v, x))).OrderBy(t => t.x.OffsetSeconds))
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {round.Round + 1} | {v.Name} | {Fmt.N(round.OffsetSeconds, "0.0")} s | {Fmt.N(round.Rps, "0.0")} | {Fmt.Us(round.P50Us)} | {Fmt.Us(round.P99Us)} | {round.Failed} | {Fmt.N(round.Cpu.GeneratorCores, "0.00")} cores{(round.Cpu.Saturated ? " **SATURATED**" : "")} |");
            sb.AppendLine();
        }

        if (r.Wrk.Count > 0)
        {
            sb.AppendLine("## wrk cross-check");
            sb.AppendLine();
            sb.AppendLine("| variant | wrk req/s | ours req/s | wrk/ours | wrk p50 | wrk p99 | wrk avg | wrk errors | command |");
            sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            foreach (var w in r.Wrk)
            {
                if (w.Error is not null)
                {
                    sb.AppendLine(CultureInfo.InvariantCulture, $"| {w.Variant} | – | {Fmt.N(w.OursRps ?? 0, "0.0")} | – | – | – | – | {w.Error} | `wrk {string.Join(' ', w.Arguments)}` |");
                    continue;
                }
                string ratio = w.OursRps is > 0 ? Fmt.N(w.Rps / w.OursRps.Value, "0.00") : "–";
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {w.Variant} | {Fmt.N(w.Rps, "0.0")} | {Fmt.N(w.OursRps ?? 0, "0.0")} | {ratio} | {Opt(w.P50Us)} | {Opt(w.P99Us)} | {Opt(w.LatencyAvgUs)} | {w.SocketErrors + w.Non2xx} | `wrk {string.Join(' ', w.Arguments)}` |");
            }
            sb.AppendLine();
            sb.AppendLine("wrk is closed-loop (its latency is service time, not from an intended schedule) and uses one thread here; a figure within tens of percent of ours says both measure the target, not themselves.");
            sb.AppendLine();
        }

        if (r.Warnings.Count > 0)
        {
            sb.AppendLine("## Warnings");
            sb.AppendLine();
            foreach (var w in r.Warnings) sb.AppendLine(CultureInfo.InvariantCulture, $"- ⚠ {w}");
            sb.AppendLine();
        }

        if (r.Ratios.Count > 0)
        {
            sb.AppendLine("## Ratio");
            sb.AppendLine();
            foreach (var x in r.Ratios)
            {
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"**{x.Variant}/{x.Baseline} = {Fmt.N(x.Rps, "0.000")}** (ok req/s; per round {string.Join(", ", x.RoundRps.Select(d => Fmt.N(d, "0.000")))}; median {Fmt.N(x.RoundRpsMedian, "0.000")}, range {Fmt.N(x.RoundRpsMin, "0.000")}–{Fmt.N(x.RoundRpsMax, "0.000")}); latency p50 ×{Fmt.N(x.P50, "0.00")}, p99 ×{Fmt.N(x.P99, "0.00")}");
                sb.AppendLine();
            }
        }
        return sb.ToString();
    }

    private static string Opt(double? us) => us is { } v ? Fmt.Us(v) : "–";
}

/// <summary>A self-contained HTML page: tables plus inline-SVG charts (no scripts, no external resources).</summary>
public static class HtmlReport
{
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

    public static string Render(RunReport r)
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
          .Append(E($"Load test: {r.Scenario}")).Append("</title>\n<style>")
          .Append("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}")
          .Append("table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}")
          .Append("th:first-child,td:first-child{text-align:left}.warn{color:#b00}.ratio{font-size:1.4em;font-weight:bold}")
          .Append("svg{background:#fff;border:1px solid #ddd;margin:0.5em 0}code{background:#f4f4f4;padding:1px 4px}")
          .Append("</style></head><body>\n");
        sb.Append("<h1>").Append(E($"Load test: {r.Scenario}")).Append("</h1>\n");
        if (r.Description.Length > 0) sb.Append("<p>").Append(E(r.Description)).Append("</p>\n");

        foreach (var x in r.Ratios)
            sb.Append("<p class=\"ratio\">").Append(E($"{x.Variant}/{x.Baseline} = {Fmt.N(x.Rps, "0.000")}"))
              .Append("</p><p>").Append(E($"ok req/s ratio; per round {string.Join(", ", x.RoundRps.Select(d => Fmt.N(d, "0.000")))} (median {Fmt.N(x.RoundRpsMedian, "0.000")}); latency p50 ×{Fmt.N(x.P50, "0.00")}, p99 ×{Fmt.N(x.P99, "0.00")}")).Append("</p>\n");

        foreach (var w in r.Warnings) sb.Append("<p class=\"warn\">⚠ ").Append(E(w)).Append("</p>\n");

        sb.Append("<h2>Results</h2>\n<table><tr><th>variant</th><th>target</th><th>requests</th><th>failed</th><th>req/s (ok)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>generator CPU</th><th>machine busy</th></tr>\n");
        foreach (var v in r.Variants)
        {
            var l = v.Latency;
            sb.Append("<tr><td>").Append(E(v.Name)).Append("</td><td>").Append(E(v.Target)).Append("</td><td>").Append(v.Requests)
              .Append("</td><td>").Append(v.Failed).Append("</td><td>").Append(Fmt.N(v.OkRps, "0.0"))
              .Append("</td><td>").Append(E(Fmt.Us(l.P50Us))).Append("</td><td>").Append(E(Fmt.Us(l.P90Us)))
              .Append("</td><td>").Append(E(Fmt.Us(l.P99Us))).Append("</td><td>").Append(E(Fmt.Us(l.P999Us)))
              .Append("</td><td>").Append(E(Fmt.Us(l.MaxUs))).Append("</td><td>")
              .Append(E($"{Fmt.N(v.Cpu.GeneratorCores, "0.00")} cores ({Fmt.Pct(v.Cpu.GeneratorFraction)})"))
              .Append(v.Cpu.Saturated ? " <b class=\"warn\">SATURATED</b>" : "")
              .Append("</td><td>").Append(v.Cpu.MachineBusyFraction is { } m ? Fmt.Pct(m) : "?").Append("</td></tr>\n");
        }
        sb.Append("</table>\n");

        sb.Append("<h2>Throughput over time</h2>\n");
        sb.Append(Chart("completed requests per second", "s", "req/s",
            r.Variants.Select((v, i) => new ChartSeries(v.Name, Palette[i % Palette.Length], false, Segments(v, p => p.Rps))).ToList()));
        if (r.Variants.Any(v => v.Series.Any(p => p.Failed > 0)))
        {
            sb.Append("<h2>Failures over time</h2>\n");
            sb.Append(Chart("failed requests per interval", "s", "failed",
                r.Variants.Select((v, i) => new ChartSeries(v.Name, Palette[i % Palette.Length], false, Segments(v, p => p.Failed))).ToList()));
        }
        sb.Append("<h2>Latency over time</h2>\n<p>solid: p50, dashed: p99 (per interval, from the intended start)</p>\n");
        var latencySeries = new List<ChartSeries>();
        for (int i = 0; i < r.Variants.Count; i++)
        {
            var v = r.Variants[i];
            latencySeries.Add(new ChartSeries(v.Name + " p50", Palette[i % Palette.Length], false, Segments(v, p => p.P50Us / 1000)));
            latencySeries.Add(new ChartSeries(v.Name + " p99", Palette[i % Palette.Length], true, Segments(v, p => p.P99Us / 1000)));
        }
        sb.Append(Chart("latency", "s", "ms", latencySeries));

        sb.Append("<h2>Latency distribution</h2>\n");
        sb.Append(PercentileChart(r));

        sb.Append("<h2>Statuses and errors</h2>\n<ul>\n");
        foreach (var v in r.Variants)
        {
            var parts = v.Statuses.Select(kv => $"{kv.Key}: {kv.Value}").Concat(v.Errors.Select(kv => $"error {kv.Key}: {kv.Value}"));
            sb.Append("<li>").Append(E($"{v.Name}: {string.Join(", ", parts.DefaultIfEmpty("none"))}")).Append("</li>\n");
        }
        sb.Append("</ul>\n");

        if (r.Variants.Any(v => v.Rounds.Count > 1))
        {
            sb.Append("<h2>Rounds (interleaved)</h2>\n<table><tr><th>round</th><th>variant</th><th>at</th><th>req/s (ok)</th><th>p50</th><th>p99</th><th>failed</th><th>generator CPU</th></tr>\n");
            foreach (var (v, x) in r.Variants.SelectMany(v => v.Rounds.Select(x => (v, x))).OrderBy(t => t.x.OffsetSeconds))
                sb.Append("<tr><td>").Append(x.Round + 1).Append("</td><td>").Append(E(v.Name)).Append("</td><td>").Append(Fmt.N(x.OffsetSeconds, "0.0"))
                  .Append(" s</td><td>").Append(Fmt.N(x.Rps, "0.0")).Append("</td><td>").Append(E(Fmt.Us(x.P50Us))).Append("</td><td>").Append(E(Fmt.Us(x.P99Us)))
                  .Append("</td><td>").Append(x.Failed).Append("</td><td>").Append(Fmt.N(x.Cpu.GeneratorCores, "0.00")).Append("</td></tr>\n");
            sb.Append("</table>\n");
        }

        if (r.Wrk.Count > 0)
        {
            sb.Append("<h2>wrk cross-check</h2>\n<table><tr><th>variant</th><th>wrk req/s</th><th>ours req/s</th><th>wrk p50</th><th>wrk p99</th><th>errors</th><th>command</th></tr>\n");
            foreach (var w in r.Wrk)
                sb.Append("<tr><td>").Append(E(w.Variant)).Append("</td><td>").Append(w.Error is null ? Fmt.N(w.Rps, "0.0") : E(w.Error))
                  .Append("</td><td>").Append(Fmt.N(w.OursRps ?? 0, "0.0")).Append("</td><td>").Append(w.P50Us is { } a ? E(Fmt.Us(a)) : "–")
                  .Append("</td><td>").Append(w.P99Us is { } b ? E(Fmt.Us(b)) : "–").Append("</td><td>").Append(w.SocketErrors + w.Non2xx)
                  .Append("</td><td><code>").Append(E("wrk " + string.Join(' ', w.Arguments))).Append("</code></td></tr>\n");
            sb.Append("</table>\n");
        }

        sb.Append("<h2>Run</h2>\n<ul>\n");
        sb.Append("<li>").Append(E($"started {r.StartedUtc:u}; {r.Machine.Host}, {r.Machine.Cores} cores, {r.Machine.Os}, kernel {r.Machine.Kernel}, {r.Machine.Runtime}")).Append("</li>\n");
        foreach (var kv in r.Settings) sb.Append("<li>").Append(E($"{kv.Key}: {kv.Value}")).Append("</li>\n");
        sb.Append("<li><code>").Append(E(r.CommandLine)).Append("</code></li>\n</ul>\n</body></html>\n");
        return sb.ToString();
    }

    private sealed record ChartSeries(string Name, string Color, bool Dashed, List<List<(double X, double Y)>> Segments);

    private static List<List<(double, double)>> Segments(VariantReport v, Func<SeriesPoint, double> y) =>
        v.Series.GroupBy(p => p.Round).Select(g => g.OrderBy(p => p.T).Select(p => (p.T, y(p))).ToList()).ToList();

    private const int W = 1000, H = 320, L = 70, R = 20, T = 30, B = 45;

    private static string Chart(string title, string xUnit, string yUnit, List<ChartSeries> series)
    {
        var points = series.SelectMany(s => s.Segments).SelectMany(s => s).ToList();
        double maxX = points.Count == 0 ? 1 : Math.Max(1e-9, points.Max(p => p.X));
        double maxY = points.Count == 0 ? 1 : Math.Max(1e-9, points.Max(p => p.Y));
        maxX = Nice(maxX);
        maxY = Nice(maxY * 1.05);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{E(title)}\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"18\" font-size=\"14\">{E(title)}</text>\n");
        Axes(sb, maxX, maxY, xUnit, yUnit, x => Fmt.N(x, "0.##"));
        int legendX = L + 10;
        foreach (var s in series)
        {
            foreach (var seg in s.Segments)
            {
                if (seg.Count == 0) continue;
                sb.Append("<polyline fill=\"none\" stroke=\"").Append(s.Color).Append("\" stroke-width=\"1.6\"")
                  .Append(s.Dashed ? " stroke-dasharray=\"5,3\"" : "").Append(" points=\"");
                foreach (var (x, y) in seg) sb.Append(CultureInfo.InvariantCulture, $"{Px(x, maxX):0.#},{Py(y, maxY):0.#} ");
                sb.Append("\"/>\n");
                if (seg.Count == 1)
                    sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{Px(seg[0].X, maxX):0.#}\" cy=\"{Py(seg[0].Y, maxY):0.#}\" r=\"2\" fill=\"{s.Color}\"/>\n");
            }
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{legendX}\" y1=\"{T + 8}\" x2=\"{legendX + 20}\" y2=\"{T + 8}\" stroke=\"{s.Color}\" stroke-width=\"2\"{(s.Dashed ? " stroke-dasharray=\"5,3\"" : "")}/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{legendX + 24}\" y=\"{T + 12}\" font-size=\"12\">{E(s.Name)}</text>\n");
            legendX += 40 + 8 * s.Name.Length;
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>Latency by percentile (x: 0, 90, 99, 99.9, 99.99 on a log "nines" scale), from the merged histograms.</summary>
    private static string PercentileChart(RunReport r)
    {
        double[] qs = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];
        var series = new List<ChartSeries>();
        for (int i = 0; i < r.Variants.Count; i++)
        {
            var h = r.Variants[i].Histogram.ToHistogram();
            if (h.Count == 0) continue;
            var seg = qs.Select(q => (Nines(q), h.ValueAtPercentile(q) / 1e6)).ToList();
            series.Add(new ChartSeries(r.Variants[i].Name, Palette[i % Palette.Length], false, [seg]));
        }
        var points = series.SelectMany(s => s.Segments[0]).ToList();
        double maxX = Nines(100);
        double maxY = points.Count == 0 ? 1 : Nice(points.Max(p => p.Y) * 1.05);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"latency by percentile\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{L}\" y=\"18\" font-size=\"14\">latency by percentile (ms)</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{H - B}\" x2=\"{W - R}\" y2=\"{H - B}\" stroke=\"#444\"/><line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{H - B}\" stroke=\"#444\"/>\n");
        foreach (var q in new[] { 0.0, 50, 90, 99, 99.9, 99.99 })
        {
            double x = Px(Nines(q), maxX);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" y1=\"{T}\" x2=\"{x:0.#}\" y2=\"{H - B}\" stroke=\"#eee\"/><text x=\"{x:0.#}\" y=\"{H - B + 16}\" font-size=\"11\" text-anchor=\"middle\">p{Fmt.N(q, "0.##")}</text>\n");
        }
        for (int i = 0; i <= 4; i++)
        {
            double v = maxY * i / 4, y = Py(v, maxY);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{y:0.#}\" x2=\"{W - R}\" y2=\"{y:0.#}\" stroke=\"#eee\"/><text x=\"{L - 6}\" y=\"{y + 4:0.#}\" font-size=\"11\" text-anchor=\"end\">{Fmt.N(v, "0.###")}</text>\n");
        }
        int legendX = L + 10;
        foreach (var s in series)
        {
            sb.Append("<polyline fill=\"none\" stroke=\"").Append(s.Color).Append("\" stroke-width=\"1.6\" points=\"");
            foreach (var (x, y) in s.Segments[0]) sb.Append(CultureInfo.InvariantCulture, $"{Px(x, maxX):0.#},{Py(y, maxY):0.#} ");
            sb.Append("\"/>\n");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{legendX}\" y=\"{T + 12}\" font-size=\"12\" fill=\"{s.Color}\">{E(s.Name)}</text>\n");
            legendX += 30 + 8 * s.Name.Length;
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static double Nines(double q) => q >= 100 ? 5 : Math.Min(5, -Math.Log10(1 - q / 100.0)); // p90 → 1, p99 → 2, ...

    private static void Axes(StringBuilder sb, double maxX, double maxY, string xUnit, string yUnit, Func<double, string> fx)
    {
        sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{H - B}\" x2=\"{W - R}\" y2=\"{H - B}\" stroke=\"#444\"/><line x1=\"{L}\" y1=\"{T}\" x2=\"{L}\" y2=\"{H - B}\" stroke=\"#444\"/>\n");
        for (int i = 0; i <= 5; i++)
        {
            double v = maxX * i / 5, x = Px(v, maxX);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:0.#}\" y1=\"{T}\" x2=\"{x:0.#}\" y2=\"{H - B}\" stroke=\"#eee\"/><text x=\"{x:0.#}\" y=\"{H - B + 16}\" font-size=\"11\" text-anchor=\"middle\">{E(fx(v))}</text>\n");
        }
        for (int i = 0; i <= 4; i++)
        {
            double v = maxY * i / 4, y = Py(v, maxY);
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{L}\" y1=\"{y:0.#}\" x2=\"{W - R}\" y2=\"{y:0.#}\" stroke=\"#eee\"/><text x=\"{L - 6}\" y=\"{y + 4:0.#}\" font-size=\"11\" text-anchor=\"end\">{Fmt.N(v, "0.###")}</text>\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{(L + W - R) / 2}\" y=\"{H - 8}\" font-size=\"12\" text-anchor=\"middle\">{E(xUnit)}</text>");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"14\" y=\"{(T + H - B) / 2}\" font-size=\"12\" transform=\"rotate(-90 14 {(T + H - B) / 2})\" text-anchor=\"middle\">{E(yUnit)}</text>\n");
    }

    private static double Px(double x, double maxX) => L + (W - L - R) * (x / maxX);
    private static double Py(double y, double maxY) => H - B - (H - T - B) * Math.Min(1, y / maxY);

    /// <summary>Rounds up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × a power of ten.</summary>
    internal static double Nice(double v)
    {
        if (v <= 0 || double.IsNaN(v) || double.IsInfinity(v)) return 1;
        double p = Math.Pow(10, Math.Floor(Math.Log10(v)));
        foreach (var m in new[] { 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 })
            if (m * p >= v) return m * p;
        return 10 * p;
    }

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
