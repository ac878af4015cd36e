using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The embedded resolver (127.0.0.11 inside a task's namespace: the seed-002 DNAT to the daemon's listener
/// there) against dnsmasq serving the same records (the service VIP for <c>web</c>, the task IPs for
/// <c>tasks.web</c>), started in the same task namespace on 127.0.0.12, queried from that namespace with the
/// same load, interleaved. Both answer from memory; the figure is what the daemon's resolver costs per query.
/// </summary>
public static class DnsScenario
{
    public const string DnsmasqAddress = "127.0.0.12";

    public static async Task<int> RunAsync(Settings s, string querier, CancellationToken ct, bool dnsperf = true, int dnsperfRate = 0)
    {
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"dns-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        await using var lab = await LabSession.UpAsync(log, ct).ConfigureAwait(false);
        var state = await lab.StateAsync(ct).ConfigureAwait(false);
        var web = state.Services.Single(x => x.Name == LabPlan.DemoService);
        var vip = web.Vips[LabPlan.AppNetwork];
        var taskIps = state.Tasks.Where(t => t.Service == web.Name).Select(t => t.Addresses[LabPlan.AppNetwork]).Order(StringComparer.Ordinal).ToList();
        var netns = LabPlan.TaskNamespace(querier);

        var hosts = Path.Combine(outRoot, "dnsmasq.hosts");
        await File.WriteAllTextAsync(hosts, $"{vip} {web.Name}\n" + string.Concat(taskIps.Select(ip => $"{ip} tasks.{web.Name}\n")), ct).ConfigureAwait(false);
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["netns", "exec", netns, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", $"--addn-hosts={Path.GetFullPath(hosts)}",
                     $"--listen-address={DnsmasqAddress}", "--bind-interfaces", "--port=53", "--pid-file=", "--user=root", "--cache-size=10000", "--log-facility=-"])
            psi.ArgumentList.Add(a);
        using var dnsmasq = Process.Start(psi) ?? throw new InvalidOperationException("dnsmasq did not start");
        try
        {
            // Same answers from both (sorted A records), or the comparison means nothing.
            foreach (var name in new[] { web.Name, $"tasks.{web.Name}" })
            {
                string Sorted(string x) => string.Join(",", x.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal));
                var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
                string embedded, theirs;
                while (true)
                {
                    embedded = Sorted((await lab.TryInAsync(netns, "dig", "+short", "+time=1", "+tries=1", $"@{Mesh.Ingress.Dataplane.TaskRules.EmbeddedResolver}", name, "A").ConfigureAwait(false)).Stdout);
                    theirs = Sorted((await lab.TryInAsync(netns, "dig", "+short", "+time=1", "+tries=1", $"@{DnsmasqAddress}", name, "A").ConfigureAwait(false)).Stdout);
                    if ((embedded == theirs && embedded.Length > 0) || Stopwatch.GetTimestamp() > deadline) break;
                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
                await log.WriteLineAsync($"check {name}: embedded [{embedded}] dnsmasq [{theirs}]").ConfigureAwait(false);
                if (embedded != theirs || embedded.Length == 0) throw new InvalidOperationException($"the two resolvers answer {name} differently: embedded [{embedded}], dnsmasq [{theirs}]");
            }

            await lab.FlushConntrackAsync().ConfigureAwait(false);
            var args = new List<string>
            {
                "dns-compare", "--a", Mesh.Ingress.Dataplane.TaskRules.EmbeddedResolver, "--b", DnsmasqAddress, "--names", "embedded,dnsmasq",
                "--qname", $"{web.Name},tasks.{web.Name}", "-q",
                "--duration", Durations.Format(s.Duration), "--warmup", Durations.Format(s.Warmup),
                "--rounds", s.Rounds.ToString(CultureInfo.InvariantCulture), "-c", s.Connections.ToString(CultureInfo.InvariantCulture),
                "--timeout", Durations.Format(s.Timeout), "--generator-cores", s.CoreBudget.ToString(CultureInfo.InvariantCulture),
            };
            if (s.Rate is { } rate) { args.Add("--rate"); args.Add(rate.ToString(CultureInfo.InvariantCulture)); }
            if (s.Smoke) args.Add("--smoke");
            var (code, report) = await LabSession.RunInNamespaceAsync(netns, args, Path.Combine(outRoot, "compare"), ct).ConfigureAwait(false);

            var inv = CultureInfo.InvariantCulture;
            var md = new StringBuilder("# dns\n\n");
            md.AppendLine(inv, $"From task namespace `{netns}`: embedded = 127.0.0.11 (DNAT to the node daemon's listener), dnsmasq = {DnsmasqAddress} with the same records (`{web.Name}` → {vip}, `tasks.{web.Name}` → {string.Join(", ", taskIps)}); queries alternate between the two names.").AppendLine();
            if (report is null) { md.AppendLine(inv, $"**dns: the run failed (exit {code})**"); }
            else
            {
                md.AppendLine(inv, $"machine: {report.Machine.Cores} cores, kernel {report.Machine.Kernel}").AppendLine();
                md.AppendLine("| resolver | queries/s | p50 µs | p99 µs | p99.9 µs | failed | generator cores (max) |").AppendLine("| --- | --- | --- | --- | --- | --- | --- |");
                foreach (var v in report.Variants)
                    md.AppendLine(inv, $"| {v.Name} | {v.OkRps:0} | {v.Latency.P50Us:0} | {v.Latency.P99Us:0} | {v.Latency.P999Us:0} | {v.Failed} | {v.Rounds.Select(r => r.Cpu.GeneratorCores).DefaultIfEmpty(0).Max():0.00} |");
                md.AppendLine();
                foreach (var w in report.Warnings) md.AppendLine("- warning: " + w);
                var ratio = report.Ratios.FirstOrDefault(x => x.Variant == "embedded");
                if (ratio is not null) md.AppendLine().AppendLine(inv, $"**embedded/dnsmasq: queries/s {ratio.Rps:0.00} (rounds {ratio.RoundRpsMin:0.00}–{ratio.RoundRpsMax:0.00}), p99 ×{ratio.P99:0.00}**");
            }
            if (dnsperf && !ct.IsCancellationRequested)
            {
                if (File.Exists("/usr/bin/dnsperf") || File.Exists("/usr/local/bin/dnsperf"))
                    md.Append(await DnsperfPhaseAsync(netns, [web.Name, $"tasks.{web.Name}"], s, dnsperfRate > 0 ? dnsperfRate : s.Smoke ? 2000 : 10000, outRoot, log, ct).ConfigureAwait(false));
                else md.AppendLine().AppendLine("dnsperf phase skipped: dnsperf is not installed (`apt-get install dnsperf`)");
            }
            await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), md.ToString(), CancellationToken.None).ConfigureAwait(false);
            Console.Out.Write(md.ToString());
            return ct.IsCancellationRequested ? 130 : code;
        }
        finally
        {
            if (!dnsmasq.HasExited) { dnsmasq.Kill(); await dnsmasq.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false); }
        }
    }

    public sealed record DnsperfRun(string Resolver, int Round, double Qps, double AvgLatencyUs, long Sent, long Lost, IReadOnlyList<double> LatenciesUs);

    /// <summary>
    /// dnsperf (DNS-OARC) against both resolvers from the same namespace, interleaved in rounds (A B, B A, …):
    /// a throughput run per resolver (100 queries outstanding, as in PERFORMANCE-ANCHORS; dnsperf's own queries/s
    /// and average latency), then a latency run at a fixed rate both can sustain with <c>-v</c>, whose
    /// per-query latencies (µs resolution) give exact p50/p99/p99.9. dnsperf prints no percentiles itself.
    /// </summary>
    private static async Task<string> DnsperfPhaseAsync(string netns, IReadOnlyList<string> names, Settings s, int rate, string outRoot, TextWriter log, CancellationToken ct)
    {
        var inv = CultureInfo.InvariantCulture;
        var queries = Path.GetFullPath(Path.Combine(outRoot, "dnsperf.queries"));
        await File.WriteAllTextAsync(queries, string.Concat(names.Select(n => $"{n} A\n")), ct).ConfigureAwait(false);
        var servers = new[] { ("embedded", Mesh.Ingress.Dataplane.TaskRules.EmbeddedResolver), ("dnsmasq", DnsmasqAddress) };
        var rounds = Math.Max(1, s.Rounds);
        var seconds = Math.Max(1, (int)Math.Round(s.Duration.TotalSeconds / rounds));
        var throughput = new List<DnsperfRun>();
        var latency = new List<DnsperfRun>();
        for (var r = 0; r < rounds; r++)
        {
            foreach (var (name, server) in r % 2 == 0 ? servers : servers.Reverse())
                throughput.Add(await DnsperfAsync(netns, name, r, server, queries, ["-l", seconds.ToString(inv), "-q", "100"], false, outRoot, ct).ConfigureAwait(false));
        }
        for (var r = 0; r < rounds; r++)
        {
            foreach (var (name, server) in r % 2 == 0 ? servers : servers.Reverse())
                latency.Add(await DnsperfAsync(netns, name, r, server, queries, ["-l", seconds.ToString(inv), "-q", "100", "-Q", rate.ToString(inv), "-v"], true, outRoot, ct).ConfigureAwait(false));
        }
        await log.WriteLineAsync("dnsperf: " + string.Join("; ", throughput.Select(x => $"{x.Resolver} r{x.Round} {x.Qps:0} q/s"))).ConfigureAwait(false);

        var md = new StringBuilder();
        md.AppendLine().AppendLine(inv, $"## dnsperf ({rounds} interleaved rounds of {seconds} s per resolver and phase, from `{netns}`, queries `{string.Join("`, `", names)}` A)").AppendLine();
        md.AppendLine(inv, $"| resolver | queries/s (100 outstanding) | avg latency at that load | lost | p50 at {rate:N0} q/s | p99 at {rate:N0} q/s | p99.9 at {rate:N0} q/s | lost at {rate:N0} q/s |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        var stats = new Dictionary<string, (double Qps, double P99)>();
        foreach (var (name, _) in servers)
        {
            var t = throughput.Where(x => x.Resolver == name).ToList();
            var l = latency.Where(x => x.Resolver == name).ToList();
            var qps = t.Sum(x => x.Qps * 1) / t.Count;
            var avg = t.Sum(x => x.AvgLatencyUs) / t.Count;
            var all = l.SelectMany(x => x.LatenciesUs).Order().ToArray();
            double P(double q) => all.Length == 0 ? double.NaN : all[Math.Clamp((int)Math.Ceiling(q * all.Length) - 1, 0, all.Length - 1)];
            stats[name] = (qps, P(0.99));
            md.AppendLine(inv, $"| {name} | {qps:N0} | {avg:0} µs | {t.Sum(x => x.Lost)} of {t.Sum(x => x.Sent)} | {P(0.5):0} µs | {P(0.99):0} µs | {P(0.999):0} µs | {l.Sum(x => x.Lost)} of {l.Sum(x => x.Sent)} |");
        }
        var perRound = Enumerable.Range(0, rounds).Select(r => throughput.Single(x => x.Resolver == "embedded" && x.Round == r).Qps / throughput.Single(x => x.Resolver == "dnsmasq" && x.Round == r).Qps).ToList();
        md.AppendLine();
        md.AppendLine(inv, $"**dnsperf embedded/dnsmasq: queries/s {stats["embedded"].Qps / stats["dnsmasq"].Qps:0.00} (rounds {perRound.Min():0.00}–{perRound.Max():0.00}), p99 at {rate:N0} q/s ×{stats["embedded"].P99 / stats["dnsmasq"].P99:0.00}**");
        return md.ToString();
    }

    private static async Task<DnsperfRun> DnsperfAsync(string netns, string name, int round, string server, string queries, string[] extra, bool verbose, string outRoot, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["netns", "exec", netns, "dnsperf", "-s", server, "-d", queries, "-t", "2", .. extra]) psi.ArgumentList.Add(a);
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
                if (double.TryParse(last, NumberStyles.Float, CultureInfo.InvariantCulture, out var sec)) latencies.Add(sec * 1e6);
            }
            else tail.AppendLine(line);
        }
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        var text = tail.ToString();
        await File.WriteAllTextAsync(Path.Combine(outRoot, $"dnsperf-{(verbose ? "latency" : "qps")}-{name}-r{round}.txt"), text + await stderr.ConfigureAwait(false), CancellationToken.None).ConfigureAwait(false);
        if (p.ExitCode != 0) throw new InvalidOperationException($"dnsperf against {server} exited {p.ExitCode}: {await stderr.ConfigureAwait(false)}");
        static double Field(string text, string label)
        {
            var i = text.IndexOf(label, StringComparison.Ordinal);
            if (i < 0) return double.NaN;
            var rest = text[(i + label.Length)..].TrimStart();
            var end = 0;
            while (end < rest.Length && (char.IsDigit(rest[end]) || rest[end] == '.')) end++;
            return double.Parse(rest[..end], CultureInfo.InvariantCulture);
        }
        return new DnsperfRun(name, round, Field(text, "Queries per second:"), Field(text, "Average Latency (s):") * 1e6,
            (long)Field(text, "Queries sent:"), (long)Field(text, "Queries lost:"), latencies);
    }
}
