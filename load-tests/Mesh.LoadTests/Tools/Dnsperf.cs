using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Mesh.LoadTests.Tools;

/// <summary>One resolver dnsperf is pointed at.</summary>
public sealed record DnsperfTarget(string Name, string Server, int Port = 53);

/// <summary>One dnsperf run against one resolver.</summary>
public sealed record DnsperfRun(string Resolver, int Round, bool Latency, double Qps, double AvgLatencyUs, long Sent, long Lost, IReadOnlyList<double> LatenciesUs);

/// <summary>Called around each dnsperf run (resolver, round, latency phase?), e.g. to read the server's own counters.</summary>
public delegate Task DnsperfHook(DnsperfTarget target, int round, bool latency, bool before);

/// <summary>
/// dnsperf (DNS-OARC) against two resolvers, interleaved in rounds (A B, B A, …): a throughput run per resolver
/// (100 queries outstanding, as in PERFORMANCE-ANCHORS; dnsperf's own queries/s and average latency), then a
/// latency run at a fixed rate both can sustain with <c>-v</c>, whose per-query latencies (µs resolution) give
/// exact p50/p99/p99.9. dnsperf prints no percentiles itself. Started with an argument array, never a shell;
/// inside <c>netns</c> when one is given.
/// </summary>
public static class Dnsperf
{
    public static bool Installed => File.Exists("/usr/bin/dnsperf") || File.Exists("/usr/local/bin/dnsperf");

    public sealed record Options(int Rounds, int Seconds, int Rate, int Outstanding = 100);

    public sealed record Result(IReadOnlyList<DnsperfRun> Runs, string Markdown, double QpsRatio, double P99Ratio);

    public static async Task<Result> CompareAsync(string? netns, IReadOnlyList<DnsperfTarget> servers, IReadOnlyList<string> names, Options o,
        string outRoot, TextWriter log, CancellationToken ct, DnsperfHook? hook = null)
    {
        if (servers.Count < 2) throw new ArgumentException("dnsperf compares two resolvers or more (each against the last)", nameof(servers));
        var inv = CultureInfo.InvariantCulture;
        var queries = Path.GetFullPath(Path.Combine(outRoot, "dnsperf.queries"));
        await File.WriteAllTextAsync(queries, string.Concat(names.Select(n => $"{n} A\n")), ct).ConfigureAwait(false);
        var rounds = Math.Max(1, o.Rounds);
        var runs = new List<DnsperfRun>();
        foreach (var latency in new[] { false, true })
        {
            for (var r = 0; r < rounds; r++)
            {
                foreach (var target in r % 2 == 0 ? servers : servers.Reverse())
                {
                    string[] extra = latency
                        ? ["-l", o.Seconds.ToString(inv), "-q", o.Outstanding.ToString(inv), "-Q", o.Rate.ToString(inv), "-v"]
                        : ["-l", o.Seconds.ToString(inv), "-q", o.Outstanding.ToString(inv)];
                    if (hook is not null) await hook(target, r, latency, true).ConfigureAwait(false);
                    runs.Add(await RunAsync(netns, target, r, latency, queries, extra, outRoot, ct).ConfigureAwait(false));
                    if (hook is not null) await hook(target, r, latency, false).ConfigureAwait(false);
                }
            }
        }
        await log.WriteLineAsync("dnsperf: " + string.Join("; ", runs.Where(x => !x.Latency).Select(x => $"{x.Resolver} r{x.Round} {x.Qps:0} q/s"))).ConfigureAwait(false);

        var md = new StringBuilder();
        md.AppendLine().AppendLine(inv, $"## dnsperf ({rounds} interleaved rounds of {o.Seconds} s per resolver and phase{(netns is null ? "" : $", from `{netns}`")}, queries `{string.Join("`, `", names)}` A)").AppendLine();
        md.AppendLine(inv, $"| resolver | queries/s ({o.Outstanding} outstanding) | avg latency at that load | lost | p50 at {o.Rate:N0} q/s | p99 at {o.Rate:N0} q/s | p99.9 at {o.Rate:N0} q/s | lost at {o.Rate:N0} q/s |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        var stats = new Dictionary<string, (double Qps, double P99)>();
        foreach (var target in servers)
        {
            var t = runs.Where(x => x.Resolver == target.Name && !x.Latency).ToList();
            var l = runs.Where(x => x.Resolver == target.Name && x.Latency).ToList();
            var qps = t.Sum(x => x.Qps) / t.Count;
            var avg = t.Sum(x => x.AvgLatencyUs) / t.Count;
            var all = l.SelectMany(x => x.LatenciesUs).Order().ToArray();
            stats[target.Name] = (qps, Percentile(all, 0.99));
            md.AppendLine(inv, $"| {target.Name} | {qps:N0} | {avg:0} µs | {t.Sum(x => x.Lost)} of {t.Sum(x => x.Sent)} | {Percentile(all, 0.5):0} µs | {Percentile(all, 0.99):0} µs | {Percentile(all, 0.999):0} µs | {l.Sum(x => x.Lost)} of {l.Sum(x => x.Sent)} |");
        }
        double Qps(string name, int r) => runs.Single(x => x.Resolver == name && x.Round == r && !x.Latency).Qps;
        var b = servers[^1].Name;
        md.AppendLine();
        foreach (var a in servers.SkipLast(1).Select(x => x.Name))
        {
            var perRound = Enumerable.Range(0, rounds).Select(r => Qps(a, r) / Qps(b, r)).ToList();
            md.AppendLine(inv, $"**dnsperf {a}/{b}: queries/s {stats[a].Qps / stats[b].Qps:0.00} (rounds {perRound.Min():0.00}–{perRound.Max():0.00}), p99 at {o.Rate:N0} q/s ×{stats[a].P99 / stats[b].P99:0.00}**").AppendLine();
        }

        return new Result(runs, md.ToString(), stats[servers[0].Name].Qps / stats[b].Qps, stats[servers[0].Name].P99 / stats[b].P99);
    }

    /// <summary>Nearest rank over sorted values; NaN when empty.</summary>
    public static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static async Task<DnsperfRun> RunAsync(string? netns, DnsperfTarget target, int round, bool verbose, string queries, string[] extra,
        string outRoot, CancellationToken ct)
    {
        var inv = CultureInfo.InvariantCulture;
        var psi = new ProcessStartInfo(netns is null ? "dnsperf" : "ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        string[] args = ["-s", target.Server, "-p", target.Port.ToString(inv), "-d", queries, "-t", "2", .. extra];
        foreach (var a in netns is null ? args : ["netns", "exec", netns, "dnsperf", .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dnsperf did not start");
        var stderr = p.StandardError.ReadToEndAsync(ct);
        var latencies = new List<double>();
        var tail = new StringBuilder();
        while (await p.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
        {
            // -v: "> NOERROR web A 0.000123" per response (latency in seconds)
            if (verbose && line.StartsWith("> ", StringComparison.Ordinal))
            {
                var last = line[(line.LastIndexOf(' ') + 1)..];
                if (double.TryParse(last, NumberStyles.Float, inv, out var sec)) latencies.Add(sec * 1e6);
            }
            else tail.AppendLine(line);
        }
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var text = tail.ToString();
        await File.WriteAllTextAsync(Path.Combine(outRoot, $"dnsperf-{(verbose ? "latency" : "qps")}-{target.Name}-r{round}.txt"), text + await stderr.ConfigureAwait(false), CancellationToken.None).ConfigureAwait(false);
        if (p.ExitCode != 0) throw new InvalidOperationException($"dnsperf against {target.Server} exited {p.ExitCode}: {await stderr.ConfigureAwait(false)}");
        return new DnsperfRun(target.Name, round, verbose, Field(text, "Queries per second:"), Field(text, "Average Latency (s):") * 1e6,
            (long)Field(text, "Queries sent:"), (long)Field(text, "Queries lost:"), latencies);
    }

    private static double Field(string text, string label)
    {
        var i = text.IndexOf(label, StringComparison.Ordinal);
        if (i < 0) return double.NaN;
        var rest = text[(i + label.Length)..].TrimStart();
        var end = 0;
        while (end < rest.Length && (char.IsDigit(rest[end]) || rest[end] == '.')) end++;
        return double.Parse(rest[..end], CultureInfo.InvariantCulture);
    }
}
