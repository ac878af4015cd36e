using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Reporting;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The L7 entry against nginx and haproxy (issue 11, "L7"): the same three task servers behind each, the same node
/// (node 3, which runs no task, so every request crosses the overlay), wrk from mesh-client with <c>Host: web.test</c>.
/// Mesh's YARP entry listens in the node's namespace and opens its backend connections in the ingress sandbox;
/// nginx and haproxy run in that same sandbox namespace (<c>ip netns exec</c>) on spare ports, which the client reaches
/// through node 3 by a route (no NAT on the way in, as for the entry). All three keep connections to the backends
/// alive, round robin over the tasks, and add X-Forwarded-For; each may use both cores (nginx 2 workers, haproxy
/// 2 threads, Kestrel its thread pool). The machine is shared: the runs are interleaved (mesh, nginx, haproxy, mesh,
/// ...) round by round, so a slow phase of the machine hits all three alike; the table has each variant's median
/// round and the ratios of the medians.
/// </summary>
public static class L7Proxies
{
    public const int NginxPort = 8181;
    public const int HaproxyPort = 8182;
    private const string Sandbox = "mesh-n3-ingress";
    private const string SandboxAddress = "172.18.0.2";

    public sealed record Options(Settings Settings);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var s = o.Settings;
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"l7-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        await using var lab = await LabSession.UpAsync(log, ct, replicas: 3).ConfigureAwait(false);
        var state = await lab.StateAsync(ct).ConfigureAwait(false);
        var backends = state.Tasks.Where(t => t.Service == LabPlan.DemoService && t.State == TaskState.Running)
            .Select(t => $"{t.Addresses[OverlayNetwork.IngressName]}:{LabPlan.DemoTarget}").Order(StringComparer.Ordinal).ToList();
        var node = LabPlan.NodeAddress(lab.Plan.Nodes);
        await lab.InAsync(LabPlan.Client, "ip", "route", "replace", "172.18.0.0/16", "via", node).ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535").ConfigureAwait(false);

        var work = Path.Combine(LabPlan.StateDirectory, "bench-l7");
        Directory.CreateDirectory(work);
        var processes = new List<Process>();
        try
        {
            processes.Add(Start(["netns", "exec", Sandbox, "nginx", "-p", work, "-c", WriteFile(work, "nginx.conf", NginxConfig(work, backends)), "-e", "stderr"], Path.Combine(outRoot, "nginx.out")));
            processes.Add(Start(["netns", "exec", Sandbox, "haproxy", "-db", "-f", WriteFile(work, "haproxy.cfg", HaproxyConfig(backends))], Path.Combine(outRoot, "haproxy.out")));
            var variants = new (string Name, string Url)[]
            {
                ("mesh", $"http://{node}/"),
                ("nginx", $"http://{SandboxAddress}:{NginxPort}/"),
                ("haproxy", $"http://{SandboxAddress}:{HaproxyPort}/"),
            };
            foreach (var (name, url) in variants)
            {
                var answer = await WaitForAnswerAsync(lab, url, ct).ConfigureAwait(false);
                await log.WriteLineAsync($"check {name} {url} -> {answer.Trim()}").ConfigureAwait(false);
            }

            var rounds = Math.Max(1, s.Rounds);
            var duration = s.WrkDuration ?? s.Duration;
            var results = new List<(string Mode, string Variant, int Round, WrkReport Report, double CpuUsPerRequest)>();
            var cpu = new Dictionary<string, int[]>
            {
                ["mesh"] = [DaemonPid(LabPlan.NodeName(lab.Plan.Nodes))],
                ["nginx"] = [processes[0].Id],
                ["haproxy"] = [processes[1].Id],
            };

            // Not counted: a few seconds each, so that Kestrel and YARP are jitted (tiered up) and every pool is warm.
            foreach (var (name, url) in variants)
            {
                var warm = new List<string> { "netns", "exec", LabPlan.Client, "wrk" };
                warm.AddRange(Wrk.Arguments(new Uri(url), s.Connections, s.Smoke ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(3), false, s.Timeout));
                warm.InsertRange(warm.Count - 1, ["-H", $"Host: {LabPlan.DemoHost}"]);
                await Wrk.RunAsync("ip", name, new Uri(url), warm, ct).ConfigureAwait(false);
            }

            foreach (var (mode, newConnection) in new[] { ("keep-alive", false), ("new-connection", true) })
            {
                for (var round = 1; round <= rounds && !ct.IsCancellationRequested; round++)
                {
                    foreach (var (name, url) in variants)
                    {
                        await lab.FlushConntrackAsync().ConfigureAwait(false);
                        var args = new List<string> { "netns", "exec", LabPlan.Client, "wrk" };
                        args.AddRange(Wrk.Arguments(new Uri(url), s.Connections, duration, newConnection, s.Timeout));
                        args.InsertRange(args.Count - 1, ["-H", $"Host: {LabPlan.DemoHost}"]);
                        var before = CpuTicks(cpu[name][0]);
                        var report = await Wrk.RunAsync("ip", name, new Uri(url), args, ct).ConfigureAwait(false);
                        var proxyCpuUs = (CpuTicks(cpu[name][0]) - before) * 1e6 / 100; // USER_HZ
                        var cpuPerRequest = report.Requests > 0 ? proxyCpuUs / report.Requests : 0;
                        results.Add((mode, name, round, report, cpuPerRequest));
                        await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"{mode} round {round} {name}: {report.Rps:0} req/s, p99 {report.P99Us:0} µs, proxy CPU {cpuPerRequest:0} µs/request{(report.Error is null ? "" : " " + report.Error)}{(report.SocketErrors + report.Non2xx > 0 ? $" ({report.SocketErrors} socket errors, {report.Non2xx} non-2xx)" : "")}")).ConfigureAwait(false);
                    }
                }
            }

            var summary = Summarize(results, s.Connections, duration, rounds);
            await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), summary, CancellationToken.None).ConfigureAwait(false);
            await log.WriteLineAsync($"summary: {Path.GetFullPath(outRoot)}/summary.md").ConfigureAwait(false);
            Console.Out.Write(summary);
            return ct.IsCancellationRequested ? 130 : results.Any(r => r.Report.Error is not null || r.Report.Rps == 0) ? 1 : 0;
        }
        finally
        {
            foreach (var p in processes)
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                }

                await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                p.Dispose();
            }

            await lab.TryInAsync(LabPlan.Client, "ip", "route", "del", "172.18.0.0/16").ConfigureAwait(false);
        }
    }

    /// <summary>The median round of each variant and mode, and the ratios of Mesh's medians to nginx's and haproxy's.</summary>
    internal static string Summarize(IReadOnlyList<(string Mode, string Variant, int Round, WrkReport Report, double CpuUsPerRequest)> results, int connections, TimeSpan duration, int rounds)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# l7: Mesh's YARP entry vs nginx vs haproxy").AppendLine();
        md.AppendLine(inv, $"wrk -t1 -c{connections} -d{duration.TotalSeconds:0}s from mesh-client to node 3 (no local task), Host: web.test, 3 task servers; {rounds} rounds per mode, interleaved mesh, nginx, haproxy; medians of the rounds.").AppendLine();
        md.AppendLine("| mode | mesh req/s | nginx req/s | haproxy req/s | mesh p99 µs | nginx p99 µs | haproxy p99 µs | mesh/nginx | mesh/haproxy | proxy CPU µs/req mesh, nginx, haproxy | errors (socket+non-2xx) |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var mode in results.Select(r => r.Mode).Distinct())
        {
            double Median(string variant, Func<WrkReport, double> value) => MedianOf(variant, r => value(r.Report));

            double MedianOf(string variant, Func<(string Mode, string Variant, int Round, WrkReport Report, double CpuUsPerRequest), double> value)
            {
                var values = results.Where(r => r.Mode == mode && r.Variant == variant).Select(value).Order().ToList();
                return values.Count == 0 ? 0 : values.Count % 2 == 1 ? values[values.Count / 2] : (values[(values.Count / 2) - 1] + values[values.Count / 2]) / 2;
            }

            var (m, n, h) = (Median("mesh", r => r.Rps), Median("nginx", r => r.Rps), Median("haproxy", r => r.Rps));
            var errors = results.Where(r => r.Mode == mode).Sum(r => r.Report.SocketErrors + r.Report.Non2xx);
            md.AppendLine(inv, $"| {mode} | {m:0} | {n:0} | {h:0} | {Median("mesh", r => r.P99Us ?? 0):0} | {Median("nginx", r => r.P99Us ?? 0):0} | {Median("haproxy", r => r.P99Us ?? 0):0} | {(n > 0 ? m / n : 0):0.00} | {(h > 0 ? m / h : 0):0.00} | {MedianOf("mesh", r => r.CpuUsPerRequest):0}, {MedianOf("nginx", r => r.CpuUsPerRequest):0}, {MedianOf("haproxy", r => r.CpuUsPerRequest):0} | {errors} |");
        }

        md.AppendLine().AppendLine("Rounds (req/s):").AppendLine();
        foreach (var g in results.GroupBy(r => (r.Mode, r.Variant)))
        {
            md.AppendLine(inv, $"- {g.Key.Mode} {g.Key.Variant}: {string.Join(", ", g.Select(r => r.Report.Rps.ToString("0", inv)))}");
        }

        return md.ToString();
    }

    /// <summary>The daemon process of a lab node (its command line has <c>daemon</c> and <c>--node NAME</c>).</summary>
    private static int DaemonPid(string node)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                var at = Array.IndexOf(args, "--node");
                if (args.Contains("daemon") && at >= 0 && at + 1 < args.Length && args[at + 1] == node)
                {
                    return pid;
                }
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        throw new InvalidOperationException($"no daemon process of {node}");
    }

    /// <summary>utime + stime of a process and all its descendants, in clock ticks (/proc/PID/stat).</summary>
    private static long CpuTicks(int root)
    {
        var stats = new Dictionary<int, (int Parent, long Ticks)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            try
            {
                var text = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
                // After the name: state(3) ppid(4) ... utime(14) stime(15), so index = field - 3.
                stats[pid] = (int.Parse(fields[1], CultureInfo.InvariantCulture), long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
            }
            catch (IOException)
            {
                // gone meanwhile
            }
        }

        long total = 0;
        var pending = new Queue<int>([root]);
        while (pending.TryDequeue(out var pid))
        {
            total += stats.TryGetValue(pid, out var st) ? st.Ticks : 0;
            foreach (var child in stats.Where(kv => kv.Value.Parent == pid).Select(kv => kv.Key))
            {
                pending.Enqueue(child);
            }
        }

        return total;
    }

    private static string NginxConfig(string work, IReadOnlyList<string> backends) => NginxConfiguration.Build(work, workers: 2, $$"""
            upstream tasks {
        {{string.Concat(backends.Select(b => $"        server {b};\n"))}}        keepalive 64;
            }
            server {
                listen {{SandboxAddress}}:{{NginxPort}};
                location / {
                    proxy_pass http://tasks;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $host;
                    proxy_set_header X-Forwarded-For $remote_addr;
                }
            }
        """);

    private static string HaproxyConfig(IReadOnlyList<string> backends) => $"""
        global
            nbthread 2
            maxconn 4096
        defaults
            mode http
            timeout connect 5s
            timeout client 30s
            timeout server 30s
            option http-keep-alive
            http-reuse always
        frontend entry
            bind {SandboxAddress}:{HaproxyPort}
            option forwardfor
            default_backend tasks
        backend tasks
            balance roundrobin
        {string.Concat(backends.Select((b, i) => $"    server t{i} {b}\n"))}
        """;

    private static string WriteFile(string directory, string name, string content)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static Process Start(IReadOnlyList<string> args, string output)
    {
        var psi = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var p = Process.Start(psi) ?? throw new InvalidOperationException($"ip {string.Join(' ', args)} did not start");
        var sink = new StreamWriter(output) { AutoFlush = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sink) sink.WriteLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static async Task<string> WaitForAnswerAsync(LabSession lab, string url, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var r = await lab.TryInAsync(LabPlan.Client, "curl", "-sf", "-m", "3", "-H", $"Host: {LabPlan.DemoHost}", url).ConfigureAwait(false);
            if (r.ExitCode == 0)
            {
                return r.Stdout;
            }

            if (clock.Elapsed > TimeSpan.FromSeconds(15))
            {
                throw new InvalidOperationException($"{url} does not answer from {LabPlan.Client}: curl exit {r.ExitCode} {r.Stderr.Trim()}");
            }

            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }
}
