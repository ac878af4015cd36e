using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ingress.Lab.Podman;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Reporting;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// A rolling replacement of every task of <c>web</c> under constant open-loop load through node 3 (no local
/// task: every request crosses the overlay), counting failed requests; the target is zero. Each step does what
/// a careful runtime would: start the new task (namespace, overlay legs, addresses, server) and wait until it
/// answers, register it (<c>POST /v1/tasks</c> with its addresses), wait until every daemon applied it;
/// then deregister the old task, wait until every daemon applied that, let in-flight requests drain, and only
/// then stop its server and delete its namespace. With <c>--runtime podman</c> the tasks are containers: each new
/// one is started with <c>podman run</c> under the load (mesh-cni registers it at CNI ADD as starting, and every node
/// routes to it once its node found its port open), and each old one leaves as above, then <c>podman rm -f</c>.
/// </summary>
public static class Churn
{
    public const string LoadSource = "198.18.0.101";

    /// <summary>The default rate with <c>--runtime podman</c>, req/s (see <see cref="RunAsync"/>).</summary>
    public const int PodmanRate = 20;

    public sealed record Options(Settings Settings, TimeSpan Drain, bool KeepAlive, string Runtime = LabPlan.NetnsRuntime);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var s = o.Settings;
        // A podman task answers every request with a CGI (busybox httpd forks, execs sh, and that runs a few applets):
        // tens of ms of CPU each on a loaded 2-core machine, and httpd takes every connection, so above what the
        // machine can serve every request slows together and none finishes within its timeout (300/s: 9000 of 9000
        // timed out, 20/s: none). Its default is a rate the podman tasks serve; --rate overrides either.
        var rate = s.Rate ?? (o.Runtime == LabPlan.PodmanRuntime ? PodmanRate : s.Smoke ? 100 : 300);
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"churn-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        await using var lab = await LabSession.UpAsync(log, ct, runtime: o.Runtime).ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "ip", "addr", "replace", $"{LoadSource}/24", "dev", "eth0").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535").ConfigureAwait(false);
        await lab.FlushConntrackAsync().ConfigureAwait(false);

        var url = $"http://{LabPlan.NodeAddress(lab.Plan.Nodes)}:{LabPlan.DemoPublished}/";
        var args = new List<string>
        {
            "http", "--url", url, "--name", "through-node-" + lab.Plan.Nodes, "--rate", rate.ToString(CultureInfo.InvariantCulture),
            "--duration", Durations.Format(s.Duration), "--warmup", Durations.Format(s.Warmup), "--bind", LoadSource,
            "--timeout", Durations.Format(s.Timeout), "--progress-interval", "2s", "-c", s.Connections.ToString(CultureInfo.InvariantCulture),
        };
        if (!o.KeepAlive) args.Add("--new-connection");
        var client = LabSession.RunClientAsync(args, Path.Combine(outRoot, "load"), ct);

        // Let the measured part start, then replace every task, one at a time.
        await Task.Delay(s.Warmup + TimeSpan.FromSeconds(s.Smoke ? 0.5 : 2), ct).ConfigureAwait(false);
        var steps = new List<string>();
        var events = new List<(DateTimeOffset At, string What)>();
        void Event(string what) => events.Add((DateTimeOffset.UtcNow, what));
        var sw = Stopwatch.StartNew();
        var old = (await lab.StateAsync(ct).ConfigureAwait(false)).Tasks.Where(t => t.Service == LabPlan.DemoService).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        foreach (var task in old)
        {
            var step = Stopwatch.StartNew();
            var replacement = lab.Plan.UsesPodman
                ? await StartContainerAsync(lab, task, Event, ct).ConfigureAwait(false)
                : await StartReplacementAsync(lab, task, Event, ct).ConfigureAwait(false);
            var added = step.Elapsed;
            Event($"deregister {task.Name}");
            await lab.Store.RemoveTaskAsync(task.Name, ct).ConfigureAwait(false);
            await lab.WaitAppliedAsync(ct).ConfigureAwait(false);
            Event($"every node applied the removal of {task.Name}");
            await Task.Delay(o.Drain, ct).ConfigureAwait(false);
            if (lab.Plan.UsesPodman) await new LabPodmanNode(lab.Runner, NodeIndex(task.Node)).RemoveAsync(task.Name, ct).ConfigureAwait(false);
            else await StopTaskAsync(lab, task.Name, ct).ConfigureAwait(false);
            Event($"{task.Name} stopped");
            var line = string.Create(CultureInfo.InvariantCulture,
                $"{task.Name} ({task.Node}) → {replacement}: new task serving and registered after {added.TotalMilliseconds:0} ms, old drained ({Durations.Format(o.Drain)}) and removed after {step.Elapsed.TotalMilliseconds:0} ms");
            steps.Add(line);
            await log.WriteLineAsync("churn: " + line).ConfigureAwait(false);
        }
        var replaceTime = sw.Elapsed;
        var (code, report) = await client.ConfigureAwait(false);
        var after = (await lab.StateAsync(CancellationToken.None).ConfigureAwait(false)).Tasks.Where(t => t.Service == LabPlan.DemoService).Select(t => t.Name).Order(StringComparer.Ordinal).ToList();

        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder("# churn\n\n");
        md.AppendLine(inv, $"Runtime {lab.Plan.Runtime}. Open loop {rate:0} req/s to `{url}` ({(o.KeepAlive ? "keep-alive" : "a new connection per request")}, from {LoadSource}) for {Durations.Format(s.Duration)} while every task of `web` was replaced one by one (drain {Durations.Format(o.Drain)}); tasks now: {string.Join(", ", after)}.").AppendLine();
        foreach (var l in steps) md.AppendLine("- " + l);
        md.AppendLine(inv, $"- rolling replacement of {old.Count} tasks took {replaceTime.TotalSeconds:0.0} s").AppendLine();
        var v = report?.Variants.FirstOrDefault();
        if (v is not null)
        {
            // Where the failures fell against the steps, on the report's time axis (seconds since the load
            // started, warm-up included; ±0.2 s: two processes' clocks and the slot width).
            var t0 = report!.StartedUtc;
            var failedAt = v.Series.Where(p => p.Failed > 0).Select(p => string.Create(inv, $"{p.T:0.0} s: {p.Failed}")).ToList();
            md.AppendLine(inv, $"timeline (s since the load started, warm-up {Durations.Format(s.Warmup)} included; failures binned as in the report's series):");
            foreach (var (at, what) in events) md.AppendLine(inv, $"- {(at - t0).TotalSeconds:0.00} {what}");
            md.AppendLine(inv, $"- failures per time slot: {(failedAt.Count == 0 ? "none" : string.Join(", ", failedAt))}").AppendLine();
            if (report!.Machine is { } m) md.AppendLine(inv, $"machine: {m.Cores} cores, kernel {m.Kernel}").AppendLine();
            md.AppendLine(inv, $"requests {v.Requests}, ok {v.Ok}, failed {v.Failed}; p50 {v.Latency.P50Us:0} µs, p99 {v.Latency.P99Us:0} µs, max {v.Latency.MaxUs:0} µs; errors: {(v.Errors.Count == 0 ? "none" : string.Join(", ", v.Errors.Select(e => $"{e.Key} {e.Value}")))}").AppendLine();
            if (replaceTime > s.Duration) md.AppendLine("- warning: the replacement outlasted the measured load; raise --duration").AppendLine();
            md.AppendLine(inv, $"**churn: {v.Failed} failed requests of {v.Requests} (target 0)**");
        }
        else md.AppendLine(inv, $"**churn: the load run failed (exit {code})**");
        await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), md.ToString(), CancellationToken.None).ConfigureAwait(false);
        Console.Out.Write(md.ToString());
        return ct.IsCancellationRequested ? 130 : v is null ? Math.Max(1, code) : v.Failed > 0 ? 2 : 0;
    }

    /// <summary>Starts web.(next) on the old task's node, waits until its server answers, registers it and waits until every daemon applied it.</summary>
    private static async Task<string> StartReplacementAsync(LabSession lab, ServiceTask old, Action<string> Event, CancellationToken ct)
    {
        var state = await lab.StateAsync(ct).ConfigureAwait(false);
        var next = state.Tasks.Where(t => t.Service == LabPlan.DemoService).Select(t => int.Parse(t.Name[(t.Name.LastIndexOf('.') + 1)..], inv())).DefaultIfEmpty(0).Max() + 1;
        var name = $"{LabPlan.DemoService}.{next}";
        var spec = await PrepareTaskAsync(lab, LabPlan.DemoService, name, old.Node, ct).ConfigureAwait(false);
        Event($"{name} answers; register it");
        await lab.Store.AddTaskAsync(spec, ct).ConfigureAwait(false);
        await lab.WaitAppliedAsync(ct).ConfigureAwait(false);
        Event($"every node applied {name}");
        return name;
    }

    /// <summary>
    /// podman run of the next task the store names (the lowest free web.k) on the old task's node, as <c>mesh lab run</c>
    /// does: registered starting at CNI ADD, not waited for before it is routed; returns once it is running and every
    /// daemon applied that.
    /// </summary>
    private static async Task<string> StartContainerAsync(LabSession lab, ServiceTask old, Action<string> Event, CancellationToken ct)
    {
        var names = (await lab.StateAsync(ct).ConfigureAwait(false)).Tasks.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var name = Enumerable.Range(1, 1000).Select(k => $"{LabPlan.DemoService}.{k.ToString(inv())}").First(n => !names.Contains(n));
        Event($"podman run {name}");
        await lab.Cluster.StartTaskAsync(lab.Store, name, NodeIndex(old.Node), ct).ConfigureAwait(false);
        Event($"{name} running");
        await lab.WaitAppliedAsync(ct).ConfigureAwait(false);
        Event($"every node applied {name}");
        return name;
    }

    private static int NodeIndex(string node) => int.Parse(node["mesh-n".Length..], inv());

    /// <summary>
    /// What a runtime does before it registers a task: its namespace, one leg per overlay the service joins (addresses
    /// picked from the top of each subnet), and its server (<c>mesh lab serve</c>, answering "TASK NODE IP"), waited
    /// for until it answers. Returns the registration to send.
    /// </summary>
    internal static async Task<TaskSpec> PrepareTaskAsync(LabSession lab, string serviceName, string name, string node, CancellationToken ct, ISet<string>? avoid = null, bool macFromAddress = true)
    {
        var state = await lab.StateAsync(ct).ConfigureAwait(false);
        var service = state.Services.Single(x => x.Name == serviceName);
        var netns = LabPlan.TaskNamespace(name);
        var taskNs = NetworkNamespacePath.Named(netns);
        var nodeNs = NetworkNamespacePath.Named(node);
        var links = new LinkTool(lab.Runner);
        await links.EnsureNamespaceAsync(netns, ct).ConfigureAwait(false);
        var mtu = LabPlan.OverlayMtu.ToString(inv());
        var addresses = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (network, index) in StateTransitions.AttachedNetworks(service).Select((n, i) => (n, i)))
        {
            var net = StateTransitions.FindNetwork(state, network)!;
            var cidr = Validate.Cidr("subnet", net.Subnet);
            var address = FreeAddressFromTop(state, network, cidr, avoid);
            addresses[network] = address;
            var inside = $"eth{index.ToString(inv())}";
            var hostSide = "vt" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{name}/{network}")).AsSpan(0, 4));
            await links.TryIpAsync(nodeNs, ["link", "del", hostSide], ct).ConfigureAwait(false);
            await links.IpAsync(nodeNs, ["link", "add", hostSide, "mtu", mtu, "type", "veth", "peer", "name", inside, "mtu", mtu, "netns", netns], ct).ConfigureAwait(false);
            await links.IpAsync(nodeNs, ["link", "set", hostSide, "master", LabPlan.OverlayBridge(network), "up"], ct).ConfigureAwait(false);
            // Docker derives a container's MAC from its IP (02:42:a.b.c.d), so a reused address keeps its MAC and
            // no neighbour cache or bridge FDB in the mesh holds a dead one (see BENCHMARKS.md, convergence).
            if (macFromAddress) await links.IpAsync(taskNs, ["link", "set", inside, "address", "02:42:" + string.Join(':', IPAddress.Parse(address).GetAddressBytes().Select(b => b.ToString("x2", inv())))], ct).ConfigureAwait(false);
            await links.IpAsync(taskNs, ["addr", "replace", $"{address}/{cidr.PrefixLength.ToString(inv())}", "dev", inside], ct).ConfigureAwait(false);
            await links.IpAsync(taskNs, ["link", "set", inside, "up"], ct).ConfigureAwait(false);
        }
        await links.IpAsync(taskNs, ["link", "set", "lo", "up"], ct).ConfigureAwait(false);
        MeshExecutable.StartDetachedIn(netns, ["lab", "serve", "--task", name, "--node", node, "--port", LabPlan.DemoTarget.ToString(inv())]);
        var probe = $"http://{addresses[OverlayNetwork.IngressName]}:{LabPlan.DemoTarget.ToString(inv())}/";
        var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
        while ((await lab.TryInAsync(netns, "curl", "-sf", "-m", "1", probe).ConfigureAwait(false)).ExitCode != 0)
        {
            if (Stopwatch.GetTimestamp() > deadline) throw new TimeoutException($"{name}'s server did not answer on {probe}");
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
        return new TaskSpec { Name = name, Service = service.Name, Node = node, NetnsPath = taskNs.Path, Addresses = addresses };
    }

    internal static async Task StopTaskAsync(LabSession lab, string task, CancellationToken ct)
    {
        var netns = LabPlan.TaskNamespace(task);
        async Task<List<int>> Pids()
        {
            var r = await lab.Runner.RunAsync("ip", ["netns", "pids", netns], null, ct).ConfigureAwait(false);
            return r.ExitCode != 0 ? [] : r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, inv())).ToList();
        }
        foreach (var pid in await Pids().ConfigureAwait(false)) await lab.Runner.RunAsync("kill", ["-TERM", pid.ToString(inv())], null, ct).ConfigureAwait(false);
        for (var i = 0; i < 50 && (await Pids().ConfigureAwait(false)).Count > 0; i++) await Task.Delay(100, ct).ConfigureAwait(false);
        foreach (var pid in await Pids().ConfigureAwait(false)) await lab.Runner.RunAsync("kill", ["-KILL", pid.ToString(inv())], null, ct).ConfigureAwait(false);
        await lab.Runner.RunAsync("ip", ["netns", "del", netns], null, ct).ConfigureAwait(false);
    }

    /// <summary>The highest free host address of the network (the store allocates from the bottom, so the two never race).</summary>
    private static string FreeAddressFromTop(ClusterState state, string network, Cidr cidr, ISet<string>? avoid = null)
    {
        var used = new HashSet<string>(avoid ?? new HashSet<string>(), StringComparer.Ordinal);
        if (network == OverlayNetwork.IngressName) foreach (var n in state.Nodes) used.Add(n.IngressSandboxIp);
        foreach (var s in state.Services) if (s.Vips.GetValueOrDefault(network) is { } vip) used.Add(vip);
        foreach (var t in state.Tasks) if (t.Addresses.GetValueOrDefault(network) is { } a) used.Add(a);
        // stay below .250 of the subnet's last /24: mesh-vs-direct uses 10.255.255.250 on a node
        for (var c = cidr.Broadcast - 10; c > cidr.Network + 1; c--)
        {
            var ip = Cidr.ToAddress(c).ToString();
            if (!used.Contains(ip)) return ip;
        }
        throw new InvalidOperationException($"no free address on {network}");
    }

    private static CultureInfo inv() => CultureInfo.InvariantCulture;
}
