using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// Convergence as a figure (issue 5 part 5): the time from <c>POST /v1/tasks</c> through node 1's API until every
/// node's dataplane routes to the new task AND the embedded DNS of every node that serves one includes it, and
/// the same for the removal; many add/remove cycles, p50/p99, for the embedded store and for etcd in one run.
/// A dedicated service <c>conv</c> (published port 8090 → 80, on appnet) gets one task at a time on node 3, so
/// "routes" is unambiguous: a new connection through a node's published port is answered by that task (before the
/// add the sandbox has no backend and resets). Probes poll from threads that entered the probed namespace
/// (setns), so no process is started while measuring.
/// </summary>
public static class Convergence
{
    public const string Service = "conv";

    /// <summary>A service with one task on node 3 on appnet, so that node carries appnet while the cycles come and go.</summary>
    public const string AnchorService = "anchor";
    public const int Published = 8090;

    /// <param name="AppliedPoll">How often each daemon's <c>GET /v1/info</c> is asked (zero: not at all): every 10 ms it was
    /// ~100 requests per change per daemon, most of the daemons' CPU over a run and load on the very passes measured.</param>
    public sealed record Options(Settings Settings, int Cycles, IReadOnlyList<string> Stores, int LeaseTtlSeconds, TimeSpan Poll, TimeSpan CycleTimeout, bool ReuseAddresses = false, bool KernelMacs = false, TimeSpan AppliedPoll = default);

    /// <summary>One add or removal: ms from the API call until each probe saw the new state (NaN: never, within the timeout).</summary>
    public sealed record Sample(string Store, string Kind, int Cycle, double ApiMs, IReadOnlyDictionary<string, double> ProbeMs)
    {
        public double RoutesMs => ProbeMs.Where(p => p.Key.StartsWith("route", StringComparison.Ordinal)).Max(p => p.Value);
        public double DnsMs => ProbeMs.Where(p => p.Key.StartsWith("dns", StringComparison.Ordinal)).Max(p => p.Value);

        /// <summary>Until the last node's daemon reported the change applied by both its loops (<c>GET /v1/info</c>): where the time goes.</summary>
        public double AppliedMs => ProbeMs.Where(p => p.Key.StartsWith("applied", StringComparison.Ordinal)).Select(p => p.Value).DefaultIfEmpty(double.NaN).Max();
        public double AllMs => Math.Max(RoutesMs, DnsMs);
    }

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var outRoot = o.Settings.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"convergence-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        var samples = new List<Sample>();
        var gaps = new List<double>();
        var daemonCpu = new Dictionary<string, IReadOnlyList<double>>(StringComparer.Ordinal);
        foreach (var store in o.Stores)
        {
            await using var lab = await LabSession.UpAsync(log, ct, 3, store, o.LeaseTtlSeconds).ConfigureAwait(false);
            await lab.Store.CreateServiceAsync(new ServiceSpec
            {
                Name = Service,
                Ports = [new PublishedPort(Published, LabPlan.DemoTarget, TransportProtocol.Tcp)],
                Networks = [LabPlan.AppNetwork],
            }, ct).ConfigureAwait(false);

            // The daemon carries a network on a node (its bridge and VXLAN device) only while a task of that node is on
            // it, and node 3 runs none on appnet: an anchor task there keeps appnet's bridge up, so each cycle's task
            // is prepared before it registers, as a runtime that already has the network would. Not probed.
            await lab.Store.CreateServiceAsync(new ServiceSpec { Name = AnchorService, Networks = [LabPlan.AppNetwork] }, ct).ConfigureAwait(false);
            await lab.Cluster.StartTaskAsync(lab.Store, $"{AnchorService}.1", 3, ct).ConfigureAwait(false);
            await lab.WaitAppliedAsync(ct).ConfigureAwait(false);
            var state = await lab.StateAsync(ct).ConfigureAwait(false);
            // DNS is answered per node, inside each task's namespace: ask from a web task on every node that has one.
            var dnsFrom = state.Tasks.Where(t => t.Service == LabPlan.DemoService).GroupBy(t => t.Node).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (Node: g.Key, Netns: LabPlan.TaskNamespace(g.OrderBy(t => t.Name, StringComparer.Ordinal).First().Name))).ToList();
            var taskNode = LabPlan.NodeName(lab.Plan.Nodes);
            await log.WriteLineAsync($"convergence [{store}]: {o.Cycles} cycles; task on {taskNode}, API on {LabPlan.NodeName(1)}; routes via every node's :{Published} from {LabPlan.Client}; DNS tasks.{Service} from {string.Join(", ", dnsFrom.Select(d => d.Netns))}").ConfigureAwait(false);

            // Each cycle's task gets addresses no earlier cycle used (unless --reuse-addresses): see BENCHMARKS.md.
            var usedAddresses = new HashSet<string>(StringComparer.Ordinal);
            var appliedAfter = new AppliedTarget();
            var daemons = Enumerable.Range(1, lab.Plan.Nodes).Select(i => DaemonCpu.Find(LabPlan.NodeName(i))).ToList();
            var cpuBefore = daemons.Select(d => d.Seconds()).ToList();
            var changes = 0;
            for (var c = 1; c <= o.Cycles && !ct.IsCancellationRequested; c++)
            {
                var name = $"{Service}.{c}";
                var spec = await Churn.PrepareTaskAsync(lab, Service, name, taskNode, ct, o.ReuseAddresses ? null : usedAddresses, !o.KernelMacs).ConfigureAwait(false);
                foreach (var a in spec.Addresses!.Values) usedAddresses.Add(a);
                var legs = (await lab.TryInAsync(LabPlan.TaskNamespace(name), "ip", "-br", "link", "show", "eth0").ConfigureAwait(false)).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                await log.WriteLineAsync($"convergence [{store}] {name}: addresses {string.Join(", ", spec.Addresses.Select(kv => kv.Key + " " + kv.Value))}; eth0 {(legs.Length > 2 ? legs[2] : "?")}").ConfigureAwait(false);
                var appIp = IPAddress.Parse(spec.Addresses![LabPlan.AppNetwork]);
                using var probes = new ProbeSet(); // this cycle's probes, their threads ended with the cycle
                for (var i = 1; i <= lab.Plan.Nodes; i++)
                    probes.Add(Probe.Http($"route-n{i}", LabPlan.Client, new IPEndPoint(IPAddress.Parse(LabPlan.NodeAddress(i)), Published), name + " ", o.Poll)); // "TASK NODE IP": conv.1 must not match conv.12
                foreach (var (node, netns) in dnsFrom)
                    probes.Add(Probe.Dns($"dns-{node}", netns, $"tasks.{Service}", appIp, o.Poll));
                // Not part of "converged": when each daemon said it applied the change, to split the time into the daemons'
                // (the API, the watch, the coalescing, the pass) and the kernel's and the probes' after it.
                if (o.AppliedPoll > TimeSpan.Zero)
                    for (var i = 1; i <= lab.Plan.Nodes; i++)
                        probes.Add(Probe.Applied($"applied-n{i}", LabPlan.ApiSocket(LabPlan.NodeName(i)), appliedAfter, o.AppliedPoll));

                // add (the store's revision now: each change is one write, so applied means a revision after it)
                appliedAfter.Set((await lab.StateAsync(ct).ConfigureAwait(false)).Revision, removal: false);
                var add = await MeasureAsync(probes, want: true, () => lab.Store.AddTaskAsync(spec, ct), o.CycleTimeout, ct).ConfigureAwait(false);
                samples.Add(new Sample(store, "add", c, add.ApiMs, add.Probes));
                // remove (the task keeps running until every node stopped routing to it and DNS dropped it)
                (double ApiMs, Dictionary<string, double> Probes) remove;
                try
                {
                    appliedAfter.Set((await lab.StateAsync(ct).ConfigureAwait(false)).Revision, removal: true);
                    remove = await MeasureAsync(probes, want: false, () => lab.Store.RemoveTaskAsync(name, ct), o.CycleTimeout, ct).ConfigureAwait(false);
                }
                catch (InvalidOperationException e)
                {
                    // the post-mortem: who still knows the task's ingress address by which MAC
                    var ingressIp = spec.Addresses[OverlayNetwork.IngressName];
                    var mac = (await lab.TryInAsync(LabPlan.TaskNamespace(name), "ip", "-br", "link", "show", "eth0").ConfigureAwait(false)).Stdout.Trim();
                    await log.WriteLineAsync($"convergence: {e.Message}\n  task {name} eth0: {mac}").ConfigureAwait(false);
                    for (var i = 1; i <= lab.Plan.Nodes; i++)
                    {
                        var neigh = (await lab.TryInAsync(LabPlan.SandboxName(i), "ip", "neigh", "show", "to", ingressIp).ConfigureAwait(false)).Stdout.Trim();
                        await log.WriteLineAsync($"  {LabPlan.SandboxName(i)} neigh {ingressIp}: {(neigh.Length == 0 ? "(none)" : neigh)}").ConfigureAwait(false);
                    }
                    var links = (await lab.TryInAsync(taskNode, "ip", "-br", "link").ConfigureAwait(false)).Stdout.Split('\n').Where(l => l.StartsWith("vt", StringComparison.Ordinal));
                    await log.WriteLineAsync($"  {taskNode} task legs: {string.Join(" | ", links)}").ConfigureAwait(false);
                    // This store's run ends here; what it measured so far (and the other stores) is still reported.
                    samples.Add(new Sample(store, "remove", c, double.NaN, probes.ToDictionary(p => p.Name, _ => double.PositiveInfinity)));
                    await log.WriteLineAsync($"convergence [{store}]: stopped after cycle {c}").ConfigureAwait(false);
                    await Churn.StopTaskAsync(lab, name, ct).ConfigureAwait(false);
                    break;
                }
                samples.Add(new Sample(store, "remove", c, remove.ApiMs, remove.Probes));
                changes += 2;
                gaps.AddRange(probes.Select(p => p.MeanGapMs).Where(g => !double.IsNaN(g)));
                await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"convergence [{store}] {name}: add {samples[^2].AllMs:0} ms (routes {samples[^2].RoutesMs:0}, dns {samples[^2].DnsMs:0}), remove {samples[^1].AllMs:0} ms (routes {samples[^1].RoutesMs:0}, dns {samples[^1].DnsMs:0})")).ConfigureAwait(false);
                await Churn.StopTaskAsync(lab, name, ct).ConfigureAwait(false);
                await lab.WaitAppliedAsync(ct).ConfigureAwait(false);
            }

            // Each daemon's CPU over the cycles (the changes, the task stops, and the applied probes' GET /v1/info
            // every poll), per change measured: what a change costs the node, whatever the machine's load.
            daemonCpu[store] = daemons.Select((d, i) => changes == 0 ? double.NaN : (d.Seconds() - cpuBefore[i]) * 1000 / changes).ToList();
        }

        var md = Render(samples, o, gaps.Count == 0 ? double.NaN : gaps.Average(), daemonCpu);
        await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), md, CancellationToken.None).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outRoot, "samples.json"), System.Text.Json.JsonSerializer.Serialize(samples, new System.Text.Json.JsonSerializerOptions(Reporting.ReportBuilder.Json) { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }), CancellationToken.None).ConfigureAwait(false);
        Console.Out.Write(md);
        if (ct.IsCancellationRequested) return 130;
        return samples.Any(x => double.IsNaN(x.AllMs) || double.IsInfinity(x.AllMs)) ? 2 : 0;
    }

    private static async Task<(double ApiMs, Dictionary<string, double> Probes)> MeasureAsync(List<Probe> probes, bool want, Func<Task> change, TimeSpan timeout, CancellationToken ct)
    {
        // The probes first see the old state (guards against a stale answer being taken for convergence).
        foreach (var p in probes) p.Arm(!want);
        await Task.WhenAll(probes.Select(p => p.WaitAsync(TimeSpan.FromSeconds(10)))).ConfigureAwait(false);
        var stale = probes.Where(p => !p.Satisfied).ToList();
        if (stale.Count > 0)
            throw new InvalidOperationException($"the state before the change ({(want ? "task absent" : "task present")}) was not observed within 10 s by: {string.Join(", ", stale.Select(p => $"{p.Name} (last attempt saw {p.LastSeen?.ToString() ?? "nothing conclusive"})"))}");
        var t0 = Stopwatch.GetTimestamp();
        foreach (var p in probes) p.Arm(want, t0);
        await change().ConfigureAwait(false);
        var api = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        await Task.WhenAll(probes.Select(p => p.WaitAsync(timeout))).ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
        return (api, probes.ToDictionary(p => p.Name, p => p.Satisfied ? Stopwatch.GetElapsedTime(t0, p.SeenAt).TotalMilliseconds : double.PositiveInfinity));
    }

    private static string Render(List<Sample> samples, Options o, double meanGapMs, IReadOnlyDictionary<string, IReadOnlyList<double>> daemonCpu)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder("# convergence\n\n");
        md.AppendLine(inv, $"{Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}. {o.Cycles} add + remove cycles per store of one task of `{Service}` on node 3, through node 1's API. ");
        md.AppendLine(inv, $"Converged = a new connection through **every** node's :{Published} (from `{LabPlan.Client}`) is answered by the new task (add) / no longer is (remove), **and** `tasks.{Service}` from a task on every node that runs one includes its IP (add) / no longer does (remove). ");
        md.AppendLine(inv, $"\"Every daemon applied\": until the last node's `GET /v1/info` reported a revision after the change (both its loops' passes done), asked every {o.AppliedPoll.TotalMilliseconds:0} ms (0: not asked); the rest of \"converged\" is the kernel's, the DNS server's and the probes' share. ");
        md.AppendLine(inv, $"Time from just before the API call to the start of the first probe attempt that saw the new state; each probe polls every {o.Poll.TotalMilliseconds:0} ms (mean measured gap between attempts {meanGapMs:0.0} ms: the resolution). p99 (nearest rank) of {o.Cycles} samples {(o.Cycles <= 100 ? "is their maximum" : $"leaves out their {o.Cycles - (int)Math.Ceiling(0.99 * o.Cycles)} highest")}.").AppendLine();
        md.AppendLine("| store | change | n | all converged p50 | p99 | max | routes p50 / p99 | DNS p50 / p99 | every daemon applied p50 / p99 | API call p50 | not converged |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        var stats = new Dictionary<(string, string), (double P50, double P99)>();
        foreach (var g in samples.GroupBy(x => (x.Store, x.Kind)))
        {
            var ok = g.Where(x => double.IsFinite(x.AllMs)).ToList();
            double P(IEnumerable<double> v, double q) { var a = v.Where(double.IsFinite).Order().ToArray(); return a.Length == 0 ? double.NaN : a[Math.Clamp((int)Math.Ceiling(q * a.Length) - 1, 0, a.Length - 1)]; }
            var all50 = P(ok.Select(x => x.AllMs), 0.5);
            var all99 = P(ok.Select(x => x.AllMs), 0.99);
            stats[g.Key] = (all50, all99);
            md.AppendLine(inv, $"| {g.Key.Store} | {g.Key.Kind} | {g.Count()} | {all50:0} ms | {all99:0} ms | {ok.Select(x => x.AllMs).DefaultIfEmpty(double.NaN).Max():0} ms | {P(ok.Select(x => x.RoutesMs), 0.5):0} / {P(ok.Select(x => x.RoutesMs), 0.99):0} ms | {P(ok.Select(x => x.DnsMs), 0.5):0} / {P(ok.Select(x => x.DnsMs), 0.99):0} ms | {P(ok.Select(x => x.AppliedMs), 0.5):0} / {P(ok.Select(x => x.AppliedMs), 0.99):0} ms | {P(g.Select(x => x.ApiMs), 0.5):0} ms | {g.Count() - ok.Count} |");
        }
        md.AppendLine();
        foreach (var (store, cpu) in daemonCpu)
            md.AppendLine(inv, $"Daemons' CPU per change measured [{store}] (user + system over the cycles ÷ the changes; includes the task stops between cycles and the applied probes' `GET /v1/info` every poll): {string.Join(", ", cpu.Select((ms, i) => $"{LabPlan.NodeName(i + 1)} {ms:0.0} ms"))}  ");
        md.AppendLine();
        if (o.Stores.Count == 2)
        {
            var (a, b) = (o.Stores[1], o.Stores[0]);
            foreach (var kind in new[] { "add", "remove" })
                if (stats.TryGetValue((a, kind), out var x) && stats.TryGetValue((b, kind), out var y))
                    md.AppendLine(inv, $"**convergence {a}/{b}, {kind}: p50 {x.P50 / y.P50:0.00}× ({x.P50:0} vs {y.P50:0} ms), p99 {x.P99 / y.P99:0.00}× ({x.P99:0} vs {y.P99:0} ms)**  ");
        }
        return md.ToString();
    }

    /// <summary>A lab daemon's CPU time (user + system, /proc/PID/stat), found by its command line.</summary>
    private sealed class DaemonCpu(int pid)
    {
        private static readonly double TicksPerSecond = Tmds.Linux.LibC.sysconf(ScClkTck);

        /// <summary>glibc's _SC_CLK_TCK (the units of /proc/PID/stat's times).</summary>
        private const int ScClkTck = 2;

        public static DaemonCpu Find(string node)
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
                string[] args;
                try { args = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0'); }
                catch (IOException) { continue; }
                catch (UnauthorizedAccessException) { continue; }
                var at = Array.IndexOf(args, "--node");
                if (args.Contains("daemon") && at >= 0 && at + 1 < args.Length && args[at + 1] == node) return new DaemonCpu(pid);
            }

            throw new InvalidOperationException($"the daemon of {node} is not running");
        }

        public double Seconds()
        {
            // after the command's closing parenthesis: state is field 3, utime 14 and stime 15
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }
    }

    /// <summary>The store's revision before the change being measured, and whether it removes the task.</summary>
    internal sealed class AppliedTarget
    {
        private volatile Change _now = new(long.MaxValue, false);

        /// <summary>Both read together: a probe thread reads them while the next change is being set.</summary>
        public Change Now => _now;

        public void Set(long after, bool removal) => _now = new Change(after, removal);

        public sealed record Change(long After, bool Removal);
    }

    /// <summary>One cycle's probes, stopped together.</summary>
    private sealed class ProbeSet : List<Probe>, IDisposable
    {
        public void Dispose()
        {
            foreach (var p in this) p.Dispose();
        }
    }

    /// <summary>
    /// Polls one condition from a dedicated thread that entered a network namespace (setns(2) affects only the
    /// calling thread; sockets keep the namespace they were created in). Armed with the state to wait for.
    /// </summary>
    internal sealed class Probe : IDisposable
    {
        private readonly Func<bool?> _check; // true = sees the task, false = does not, null = attempt failed in a way that says nothing
        private readonly TimeSpan _poll;
        private readonly object _gate = new();
        private bool _want;
        private bool _armed;
        private bool _stopped;
        private long _after;
        private TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _attempts;
        private long _firstAttempt;
        private long _lastAttempt;

        private readonly Thread _thread;

        private Probe(string name, string? netns, Func<bool?> check, TimeSpan poll)
        {
            Name = name;
            _check = check;
            _poll = poll;
            _thread = new Thread(() => Loop(netns)) { IsBackground = true, Name = "probe " + name };
            _thread.Start();
        }

        public string Name { get; }
        public bool Satisfied { get; private set; }
        public bool? LastSeen { get; private set; }
        public long SeenAt { get; private set; }
        public double MeanGapMs => _attempts < 2 ? double.NaN : Stopwatch.GetElapsedTime(_firstAttempt, _lastAttempt).TotalMilliseconds / (_attempts - 1);

        public static Probe Http(string name, string netns, IPEndPoint target, string expect, TimeSpan poll) => new(name, netns, () => HttpSees(target, expect), poll);

        public static Probe Dns(string name, string netns, string qname, IPAddress expect, TimeSpan poll) => new(name, netns, () => DnsSees(qname, expect), poll);

        /// <summary>A probe of any condition, in this namespace (tests).</summary>
        internal static Probe Of(string name, Func<bool?> check, TimeSpan poll) => new(name, null, check, poll);

        /// <summary>
        /// The daemon behind <paramref name="socket"/> reports a revision after the change's applied. In the probes'
        /// terms (true = the task is there): applied is true for an add, false for a removal.
        /// </summary>
        public static Probe Applied(string name, string socket, AppliedTarget target, TimeSpan poll) =>
            new(name, null, () => target.Now is var change && AppliedSees(socket, change.After) is { } applied ? applied != change.Removal : null, poll);

        public void Arm(bool want, long after = 0)
        {
            lock (_gate)
            {
                _want = want;
                _after = after;
                Satisfied = false;
                _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _armed = true;
                _attempts = 0;
                Monitor.PulseAll(_gate);
            }
        }

        /// <summary>
        /// Ends the probe's thread (after the attempt in progress, if any). Each cycle makes its own probes: before this,
        /// a cycle's threads outlived it, each waking every 2 ms, and after 70 cycles ~600 of them took both cores.
        /// </summary>
        public void Dispose()
        {
            lock (_gate)
            {
                _stopped = true;
                Monitor.PulseAll(_gate);
            }
        }

        /// <summary>Whether the thread has ended within <paramref name="timeout"/> (tests).</summary>
        internal bool Ended(TimeSpan timeout) => _thread.Join(timeout);

        public async Task WaitAsync(TimeSpan timeout)
        {
            Task done;
            lock (_gate) done = _done.Task;
            await Task.WhenAny(done, Task.Delay(timeout)).ConfigureAwait(false);
            lock (_gate) _armed = false;
        }

        private void Loop(string? netns)
        {
            if (netns is not null)
            {
                using var fd = File.OpenHandle($"/run/netns/{netns}");
                if (setns((int)fd.DangerousGetHandle(), CloneNewNet) != 0) throw new InvalidOperationException($"setns {netns}: errno {Marshal.GetLastPInvokeError()}");
            }
            while (true)
            {
                bool want;
                lock (_gate)
                {
                    // disarmed (between phases, or satisfied): sleep until armed again or stopped
                    while (!_stopped && !(_armed && !Satisfied)) Monitor.Wait(_gate);
                    if (_stopped) return;
                    want = _want;
                }
                var start = Stopwatch.GetTimestamp();
                var seen = _check();
                lock (_gate)
                {
                    if (_armed && !Satisfied && want == _want)
                    {
                        LastSeen = seen;
                        if (_attempts++ == 0) _firstAttempt = start;
                        _lastAttempt = start;
                        // an attempt counts only if it started after the change was requested
                        if (seen == want && start >= _after) { Satisfied = true; SeenAt = start; _done.TrySetResult(); }
                    }
                }
                var rest = _poll - Stopwatch.GetElapsedTime(start);
                if (rest > TimeSpan.Zero) Thread.Sleep(rest);
            }
        }

        private static bool? HttpSees(IPEndPoint target, string expect)
        {
            try
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 500, SendTimeout = 500 };
                s.LingerState = new LingerOption(true, 0); // RST on close: no TIME_WAIT pile-up at 100 connections/s
                var connect = s.BeginConnect(target, null, null);
                if (!connect.AsyncWaitHandle.WaitOne(500)) return false;
                s.EndConnect(connect);
                s.Send("GET / HTTP/1.0\r\nHost: conv\r\n\r\n"u8);
                var buf = new byte[2048];
                var n = 0;
                while (n < buf.Length)
                {
                    var r = s.Receive(buf, n, buf.Length - n, SocketFlags.None);
                    if (r == 0) break;
                    n += r;
                    if (Encoding.ASCII.GetString(buf, 0, n).Contains(expect, StringComparison.Ordinal)) return true;
                }
                return Encoding.ASCII.GetString(buf, 0, n).Contains(expect, StringComparison.Ordinal);
            }
            catch (SocketException)
            {
                return false; // refused / reset / timed out: not routed to the task
            }
        }

        private static bool? AppliedSees(string socket, long after)
        {
            try
            {
                using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 500, SendTimeout = 500 };
                s.Connect(new UnixDomainSocketEndPoint(socket));
                s.Send("GET /v1/info HTTP/1.0\r\nHost: mesh\r\n\r\n"u8);
                var text = new StringBuilder();
                var buf = new byte[4096];
                for (int r; (r = s.Receive(buf)) > 0;) text.Append(Encoding.UTF8.GetString(buf, 0, r));
                var body = text.ToString();
                var json = body.IndexOf("\r\n\r\n", StringComparison.Ordinal) is var end and >= 0 ? body[(end + 4)..] : "";
                using var doc = System.Text.Json.JsonDocument.Parse(json);
                return doc.RootElement.GetProperty("appliedRevision").GetInt64() > after;
            }
            catch (Exception e) when (e is SocketException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException)
            {
                return null; // a daemon not answering says nothing about the change
            }
        }

        private static bool? DnsSees(string qname, IPAddress expect)
        {
            try
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 300 };
                var q = new List<byte>();
                var id = (ushort)Random.Shared.Next(ushort.MaxValue);
                q.AddRange([(byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
                foreach (var label in qname.Split('.')) { q.Add((byte)label.Length); q.AddRange(Encoding.ASCII.GetBytes(label)); }
                q.AddRange([0, 0, 1, 0, 1]);
                s.SendTo(q.ToArray(), new IPEndPoint(IPAddress.Parse(Mesh.Ingress.Dataplane.TaskRules.EmbeddedResolver), 53));
                var buf = new byte[1500];
                var n = s.Receive(buf);
                if (n < 12 || BinaryPrimitives.ReadUInt16BigEndian(buf) != id) return null;
                var rcode = buf[3] & 0xF;
                if (rcode == 3) return false; // NXDOMAIN
                if (rcode != 0) return null;
                // any A record's data equal to the address (RDLENGTH 4 followed by it) after the question
                var ip = expect.GetAddressBytes();
                for (var i = q.Count; i + 6 <= n; i++)
                    if (buf[i] == 0 && buf[i + 1] == 4 && buf.AsSpan(i + 2, 4).SequenceEqual(ip)) return true;
                return false;
            }
            catch (SocketException)
            {
                return null; // no answer within 300 ms: says nothing
            }
        }

        private const int CloneNewNet = 0x40000000;

        [DllImport("libc", SetLastError = true)]
        private static extern int setns(int fd, int nstype);
    }
}
