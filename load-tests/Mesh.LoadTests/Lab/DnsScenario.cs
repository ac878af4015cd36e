using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Tools;

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
                if (Dnsperf.Installed)
                {
                    var rounds = Math.Max(1, s.Rounds);
                    var o = new Dnsperf.Options(rounds, Math.Max(1, (int)Math.Round(s.Duration.TotalSeconds / rounds)), dnsperfRate > 0 ? dnsperfRate : s.Smoke ? 2000 : 10000);
                    var result = await Dnsperf.CompareAsync(netns, [new("embedded", Mesh.Ingress.Dataplane.TaskRules.EmbeddedResolver), new("dnsmasq", DnsmasqAddress)],
                        [web.Name, $"tasks.{web.Name}"], o, outRoot, log, ct).ConfigureAwait(false);
                    md.Append(result.Markdown);
                }
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
}
