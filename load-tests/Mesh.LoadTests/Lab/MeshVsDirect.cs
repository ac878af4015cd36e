using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Reporting;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// HTTP through the routing mesh (node 3's published port: node 3 runs no task, so every request crosses the
/// ingress overlay) against straight to a task's ingress IP over the same underlay hop and the same VXLAN
/// overlay, from the same client namespace. The direct path is made routable for this run only: node 3 gets
/// 10.255.255.250/16 on its ingress overlay bridge and masquerades the client there (the task has no route
/// back to the underlay), and the client routes 10.255.0.0/16 via node 3. So "direct" is the client → node →
/// VXLAN → task walk without the mesh's DNAT, sandbox hop, mark, load-balancing DNAT, SNAT and REDIRECT —
/// the reference path c of PERFORMANCE-ANCHORS plus the underlay hop both variants share.
/// </summary>
public static class MeshVsDirect
{
    public const string NodeOverlayAddress = "10.255.255.250";
    public const string MeshSource = "198.18.0.101";
    public const string DirectSource = "198.18.0.102";

    public sealed record Options(Settings Settings, bool Wrk, string DirectTask, int Replicas = 1);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var s = o.Settings;
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"mesh-vs-direct-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        // One replica by default: both paths then end at the same server process (web.1 on node 1), so only the
        // path differs (with three replicas the mesh spreads over three servers competing for two cores).
        await using var lab = await LabSession.UpAsync(log, ct, o.Replicas).ConfigureAwait(false);

        var state = await lab.StateAsync(ct).ConfigureAwait(false);
        var task = state.Tasks.FirstOrDefault(t => t.Name == o.DirectTask) ?? throw new ArgumentException($"no task {o.DirectTask} in the lab");
        var taskIp = task.Addresses[OverlayNetwork.IngressName];
        var node = LabPlan.NodeName(lab.Plan.Nodes);
        await PrepareDirectPathAsync(lab, node).ConfigureAwait(false);

        var meshUrl = $"http://{LabPlan.NodeAddress(lab.Plan.Nodes)}:{LabPlan.DemoPublished}/";
        var directUrl = $"http://{taskIp}:{LabPlan.DemoTarget}/";
        foreach (var url in new[] { meshUrl, directUrl })
        {
            var answer = await lab.InAsync(LabPlan.Client, "curl", "-sf", "-m", "3", url).ConfigureAwait(false);
            await log.WriteLineAsync($"check {url} -> {answer.Trim()}").ConfigureAwait(false);
        }

        var results = new List<(string Mode, int Code, RunReport? Report)>();
        foreach (var (mode, newConnection) in new[] { ("keep-alive", false), ("new-connection", true) })
        {
            await lab.FlushConntrackAsync().ConfigureAwait(false);
            var args = new List<string>
            {
                "http-compare", "--a", meshUrl, "--b", directUrl, "--names", "mesh,direct",
                "--bind", $"{MeshSource},{DirectSource}", "-q",
                "--duration", Durations.Format(s.Duration), "--warmup", Durations.Format(s.Warmup),
                "--rounds", s.Rounds.ToString(CultureInfo.InvariantCulture), "-c", s.Connections.ToString(CultureInfo.InvariantCulture),
                "--timeout", Durations.Format(s.Timeout), "--generator-cores", s.CoreBudget.ToString(CultureInfo.InvariantCulture),
            };
            if (newConnection) args.Add("--new-connection");
            if (o.Wrk) { args.Add("--wrk"); args.Add("--wrk-duration"); args.Add(Durations.Format(s.WrkDuration ?? s.Duration / Math.Max(1, s.Rounds))); }
            if (s.Smoke) args.Add("--smoke");
            var (code, report) = await LabSession.RunClientAsync(args, Path.Combine(outRoot, mode), ct).ConfigureAwait(false);
            results.Add((mode, code, report));
            if (ct.IsCancellationRequested) break;
        }

        var summary = Summarize(results, meshUrl, directUrl, o.DirectTask);
        await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), summary, CancellationToken.None).ConfigureAwait(false);
        await log.WriteLineAsync($"reports: {Path.GetFullPath(outRoot)}/{{keep-alive,new-connection}}/report.{{md,json,html}}, summary.md").ConfigureAwait(false);
        Console.Out.Write(summary);
        return ct.IsCancellationRequested ? 130 : results.Any(r => r.Code != 0 || r.Report is null) ? Math.Max(1, results.Max(r => r.Code)) : 0;
    }

    private static async Task PrepareDirectPathAsync(LabSession lab, string node)
    {
        await lab.InAsync(node, "ip", "addr", "replace", $"{NodeOverlayAddress}/16", "dev", LabPlan.IngressBridge).ConfigureAwait(false);
        await lab.InAsync(node, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1").ConfigureAwait(false);
        await lab.Runner.RunCheckedInAsync(Mesh.Ingress.Kernel.NetworkNamespacePath.Named(node), "nft", ["-f", "-"],
            $"table ip mesh-bench {{}}\ndelete table ip mesh-bench\ntable ip mesh-bench {{\n chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;\n  oifname \"{LabPlan.IngressBridge}\" ip saddr {LabPlan.UnderlayPrefix}.0/24 masquerade\n }}\n}}\n",
            CancellationToken.None).ConfigureAwait(false);
        foreach (var a in new[] { MeshSource, DirectSource })
            await lab.InAsync(LabPlan.Client, "ip", "addr", "replace", $"{a}/24", "dev", "eth0").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "ip", "route", "replace", "10.255.0.0/16", "via", LabPlan.NodeAddress(lab.Plan.Nodes)).ConfigureAwait(false);
        // The client side of the new-connection runs: reuse TIME_WAIT ports, wide port range (PERFORMANCE-ANCHORS pitfalls).
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535").ConfigureAwait(false);
    }

    internal static string Summarize(IReadOnlyList<(string Mode, int Code, RunReport? Report)> results, string meshUrl, string directUrl, string task)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# mesh-vs-direct").AppendLine();
        md.AppendLine(inv, $"mesh = `{meshUrl}` (node without a task: DNAT → ingress sandbox → LB DNAT + SNAT → VXLAN → task REDIRECT), from {MeshSource}").AppendLine();
        md.AppendLine(inv, $"direct = `{directUrl}` ({task}'s ingress IP, routed by the same node, masqueraded onto the same VXLAN overlay), from {DirectSource}").AppendLine();
        var machine = results.Select(r => r.Report?.Machine).FirstOrDefault(m => m is not null);
        if (machine is not null) md.AppendLine(inv, $"machine: {machine.Cores} cores, kernel {machine.Kernel}, {machine.Runtime}").AppendLine();
        md.AppendLine("| mode | mesh req/s | direct req/s | mesh p99 µs | direct p99 µs | failed mesh/direct | generator cores (max) | wrk mesh req/s | wrk direct req/s | wrk ratio |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (mode, code, r) in results)
        {
            if (r is null) { md.AppendLine(inv, $"| {mode} | run failed (exit {code}) | | | | | | | | |"); continue; }
            var m = r.Variants.First(v => v.Name == "mesh");
            var d = r.Variants.First(v => v.Name == "direct");
            var wm = r.Wrk.FirstOrDefault(w => w.Variant == "mesh");
            var wd = r.Wrk.FirstOrDefault(w => w.Variant == "direct");
            var gen = r.Variants.SelectMany(v => v.Rounds).Select(x => x.Cpu.GeneratorCores).DefaultIfEmpty(0).Max();
            md.AppendLine(inv, $"| {mode} | {m.OkRps:0} | {d.OkRps:0} | {m.Latency.P99Us:0} | {d.Latency.P99Us:0} | {m.Failed}/{d.Failed} | {gen:0.00} | {wm?.Rps:0} | {wd?.Rps:0} | {(wm is { Rps: > 0 } && wd is { Rps: > 0 } ? (wm.Rps / wd.Rps).ToString("0.00", inv) : "-")} |");
        }
        md.AppendLine();
        foreach (var w in results.Where(r => r.Report is not null).SelectMany(r => r.Report!.Warnings.Select(x => (r.Mode, x))).Distinct())
            md.AppendLine(inv, $"- warning ({w.Mode}): {w.x}");
        md.AppendLine();
        foreach (var (mode, _, r) in results)
        {
            var ratio = r?.Ratios.FirstOrDefault(x => x.Variant == "mesh" && x.Baseline == "direct");
            if (ratio is null) continue;
            md.AppendLine(inv, $"**mesh/direct {mode}: req/s {ratio.Rps:0.00} (rounds {ratio.RoundRpsMin:0.00}–{ratio.RoundRpsMax:0.00}), p99 ×{ratio.P99:0.00}**  ");
        }
        return md.ToString();
    }
}
