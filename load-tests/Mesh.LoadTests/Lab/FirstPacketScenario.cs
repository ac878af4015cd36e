using System.Globalization;
using System.Text;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Reporting;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// First-packet cost versus the number of services (issue 12; PERFORMANCE-ANCHORS "First-packet cost versus service
/// count": new connections/s with 10,000 services loaded, the target last, ÷ with 10). Every size gets its own lane
/// (<see cref="FirstPacketLane"/>: client → sandbox with the daemon's real table → backend namespace with nginx), all
/// programmed at once, and wrk opens a new connection per request (<c>Connection: close</c>) through each lane in turn,
/// round after round, so that a slow phase of the shared machine hits every size alike; the figures are the medians of
/// the rounds and the ratio is against the smallest size. Every response's body is checked (<see cref="FirstPacketCheck"/>).
/// The naive iptables layout (<see cref="ScaleScenario.NaiveIptables"/>) runs beside it as the reference the anchor's
/// 0.68 is about. No lab: scratch namespaces <c>mesh-bench-fp-*</c>, deleted at the end whatever happens.
/// </summary>
public static class FirstPacketScenario
{
    public sealed record Options(IReadOnlyList<int> Sizes, int TasksPerService, bool NaiveIptables, Settings Settings);

    /// <summary>One wrk round through one lane.</summary>
    public sealed record Round(string Lane, int Services, FirstPacketLayout Layout, int Number, double Rps, long Requests, double P50Us, double P99Us,
        long SocketErrors, long Non2xx, long Wrong, long MinPerTask, long MaxPerTask, double LoadAverage, string? Problem);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        if (!Environment.IsPrivilegedProcess) throw new InvalidOperationException("first-packet creates network namespaces: run as root");
        if (o.Sizes.Count == 0 || o.Sizes.Distinct().Count() != o.Sizes.Count || o.Sizes.Any(n => n < 1))
            throw new ArgumentException($"first-packet: --sizes must be distinct service counts >= 1, not {string.Join(",", o.Sizes)} (for a same-size control, e.g. 10,11)");
        var s = o.Settings;
        var wrk = Wrk.Find() ?? throw new InvalidOperationException("first-packet needs wrk on the PATH");
        var log = Console.Error;
        var runner = new ProcessCommandRunner(TimeSpan.FromMinutes(10)); // iptables-restore of the naive layout at 10,000 services takes a while
        var flavour = await IptablesFlavour.DetectAsync(runner, ct).ConfigureAwait(false);
        // Two cores or more: the client on CPU 0, the server on CPU 1, so that the two do not take turns on one core.
        var (clientCpu, serverCpu) = Environment.ProcessorCount >= 2 ? ((int?)0, (int?)1) : (null, null);
        var layouts = o.NaiveIptables ? new[] { FirstPacketLayout.Mesh, FirstPacketLayout.NaiveIptables } : [FirstPacketLayout.Mesh];
        var plan = layouts.SelectMany(l => o.Sizes.Select(n => (Layout: l, Services: n))).ToList();
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"first-packet-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var work = Path.Combine(Path.GetTempPath(), $"mesh-bench-fp-{Environment.ProcessId}");
        var script = Path.Combine(work, "check.lua");
        Directory.CreateDirectory(work);
        await File.WriteAllTextAsync(script, FirstPacketCheck.Script, ct).ConfigureAwait(false);

        var lanes = new List<FirstPacketLane>();
        var targets = new Dictionary<string, FirstPacketTarget>();
        try
        {
            for (var i = 0; i < plan.Count; i++)
                await FirstPacketLane.DeleteNamespacesAsync(runner, i).ConfigureAwait(false); // a crashed run's leftovers
            await FirstPacketLane.DeleteClientAsync(runner).ConfigureAwait(false);
            await FirstPacketLane.EnsureClientAsync(runner, ct).ConfigureAwait(false);
            for (var i = 0; i < plan.Count; i++)
            {
                var (state, target) = FirstPacketTarget.Make(plan[i].Services, o.TasksPerService);
                var lane = await FirstPacketLane.CreateAsync(runner, flavour, plan[i].Layout, state, target, i, work, serverCpu, ct).ConfigureAwait(false);
                lanes.Add(lane);
                targets[lane.Name] = target;
                await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"first-packet: lane {lane.Name} ready ({plan[i].Services} services x {o.TasksPerService} tasks, programmed in {lane.Programming.TotalMilliseconds:0} ms; target {target.Service} at {lane.Url(target)})")).ConfigureAwait(false);
            }

            // One request per lane first, with a short timeout: a path that does not answer fails here in seconds
            // (wrk would wait out the kernel's SYN retries, minutes, before it gave up).
            foreach (var lane in lanes)
            {
                var url = lane.Url(targets[lane.Name]).ToString();
                var answer = await runner.RunInAsync(NetworkNamespacePath.Named(FirstPacketLane.ClientNamespace), "curl", ["-s", "-m", "3", url], null, ct).ConfigureAwait(false);
                if (answer.ExitCode != 0 || !answer.Stdout.StartsWith(FirstPacketCheck.BodyPrefix, StringComparison.Ordinal))
                {
                    await log.WriteLineAsync($"first-packet: lane {lane.Name}: no answer from {url} in the client namespace (curl exit {answer.ExitCode}: '{answer.Stdout.Trim()}' {answer.Stderr.Trim()})").ConfigureAwait(false);
                    return 4;
                }
            }

            if (!s.Smoke)
            {
                // Not counted: nginx, wrk and the kernel's caches warm on every path.
                foreach (var lane in lanes)
                    _ = await RunRoundAsync(lane, 0, TimeSpan.FromSeconds(Math.Max(1, s.Warmup.TotalSeconds))).ConfigureAwait(false);
            }

            var rounds = new List<Round>();
            var duration = s.Smoke ? TimeSpan.FromSeconds(1) : s.Duration;
            for (var number = 1; number <= s.Rounds && !ct.IsCancellationRequested; number++)
            {
                // A B ... then ... B A: a machine that speeds up or slows down during a round favours no lane.
                foreach (var lane in number % 2 == 1 ? lanes : Enumerable.Reverse(lanes))
                {
                    var round = await RunRoundAsync(lane, number, duration).ConfigureAwait(false);
                    rounds.Add(round);
                    await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"round {number} {round.Lane}: {round.Rps:0} new connections/s, p50 {round.P50Us:0} µs, p99 {round.P99Us:0} µs, per task {round.MinPerTask}..{round.MaxPerTask}, load {round.LoadAverage:0.00}{(round.Problem is null ? "" : " PROBLEM: " + round.Problem)}")).ConfigureAwait(false);
                }
            }

            var md = Render(rounds, o, flavour, duration, s.Connections, clientCpu, serverCpu, lanes.ToDictionary(l => l.Name, l => l.Programming));
            await File.WriteAllTextAsync(Path.Combine(outRoot, "report.md"), md, CancellationToken.None).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(outRoot, "report.json"), System.Text.Json.JsonSerializer.Serialize(rounds, ReportBuilder.Json), CancellationToken.None).ConfigureAwait(false);
            await log.WriteLineAsync($"reports: {Path.GetFullPath(outRoot)}/report.{{md,json}}").ConfigureAwait(false);
            Console.Out.Write(md);
            return ct.IsCancellationRequested ? 130 : rounds.Count > 0 && rounds.All(r => r.Problem is null) ? 0 : 4;
        }
        finally
        {
            foreach (var lane in lanes)
                await lane.DisposeAsync().ConfigureAwait(false);
            for (var i = lanes.Count; i < plan.Count; i++)
                await FirstPacketLane.DeleteNamespacesAsync(runner, i).ConfigureAwait(false); // a lane that failed half-built cleaned itself; the rest never began
            await FirstPacketLane.DeleteClientAsync(runner).ConfigureAwait(false);
            Directory.Delete(work, recursive: true);
        }

        async Task<Round> RunRoundAsync(FirstPacketLane lane, int number, TimeSpan length)
        {
            var target = targets[lane.Name];
            await lane.FlushConntrackAsync(ct).ConfigureAwait(false);
            var url = lane.Url(target);
            List<string> args = ["netns", "exec", FirstPacketLane.ClientNamespace];
            if (clientCpu is { } c)
                args.AddRange(["taskset", "-c", c.ToString(CultureInfo.InvariantCulture)]);
            args.Add(wrk);
            var wrkArgs = Wrk.Arguments(url, s.Connections, length, newConnection: true, s.Timeout);
            wrkArgs.InsertRange(wrkArgs.Count - 1, ["-s", script]);
            args.AddRange(wrkArgs);
            var output = "";
            var report = await Wrk.RunAsync("ip", lane.Name, url, args, ct, text => output = text).ConfigureAwait(false);
            var load = LoadAverage();
            var check = FirstPacketCheck.Parse(output);
            var problem = report.Error
                ?? (check is null ? "wrk's check script wrote nothing"
                    : report.Requests == 0 ? "no answer"
                    : report.SocketErrors + report.Non2xx > 0 ? string.Create(CultureInfo.InvariantCulture, $"{report.SocketErrors} socket errors, {report.Non2xx} non-2xx")
                    : check.Problem(target.Tasks, lane.Layout == FirstPacketLayout.Mesh ? s.Connections + 1 : null));
            return new Round(lane.Name, lane.Services, lane.Layout, number, report.Rps, report.Requests, report.P50Us ?? 0, report.P99Us ?? 0,
                report.SocketErrors, report.Non2xx, check?.Wrong ?? 0, check is { ByTask.Count: > 0 } ? check.ByTask.Values.Min() : 0, check is { ByTask.Count: > 0 } ? check.ByTask.Values.Max() : 0, load, problem);
        }
    }

    /// <summary>The 1-minute load average (<c>/proc/loadavg</c>): with every figure, since the machine is shared.</summary>
    private static double LoadAverage() =>
        double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    internal static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>
    /// A distribution-free confidence interval for the median of <paramref name="values"/> (the sign test's order
    /// statistics): the k-th smallest and k-th largest value, k the largest with P(Binomial(n, ½) &lt; k) ≤ (1 − level) / 2.
    /// Null when there are too few values for any interval at that level (5 or fewer at 95 %). It assumes nothing of the
    /// ratios' distribution, which matters here: a shared host's throughput moves in phases, and a round caught at a
    /// phase's edge gives an outlier no mean or normal interval would survive.
    /// </summary>
    internal static (double Low, double High)? MedianInterval(IReadOnlyList<double> values, double level = 0.95)
    {
        int n = values.Count;
        double tail = (1 - level) / 2, below = 0, term = Math.Pow(0.5, n); // term = P(B = i), below = P(B < k)
        int k = 0;
        for (var i = 0; i < n / 2; i++)
        {
            if (below + term > tail) break;
            below += term;
            term = term * (n - i) / (i + 1);
            k = i + 1;
        }
        if (k == 0) return null;
        var sorted = values.Order().ToList();
        return (sorted[k - 1], sorted[n - k]);
    }

    /// <summary>Per layout, each size's rounds ÷ the smallest size's rounds of the same number (the pairs ran back to back).</summary>
    internal static IReadOnlyList<double> PairedRatios(IReadOnlyList<Round> rounds, FirstPacketLayout layout, int services)
    {
        var smallest = rounds.Where(r => r.Layout == layout).Min(r => r.Services);
        var baseline = rounds.Where(r => r.Layout == layout && r.Services == smallest).ToDictionary(r => r.Number);
        return rounds.Where(r => r.Layout == layout && r.Services == services && baseline.ContainsKey(r.Number) && baseline[r.Number].Rps > 0)
            .Select(r => r.Rps / baseline[r.Number].Rps).ToList();
    }

    internal static string Render(IReadOnlyList<Round> rounds, Options o, IptablesFlavour flavour, TimeSpan duration, int connections, int? clientCpu, int? serverCpu,
        IReadOnlyDictionary<string, TimeSpan> programming)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# first-packet: new connections/s versus the number of services").AppendLine();
        md.AppendLine(inv, $"{Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, iptables flavour {flavour.Name}; N services × {o.TasksPerService} tasks, one published TCP port each; " +
                           $"the target is the last service, its {o.TasksPerService} tasks' addresses in a backend namespace (nginx, 1 worker{(serverCpu is { } sc ? $" on CPU {sc}" : "")}, body `task ADDRESS`). " +
                           $"`wrk -t1 -c{connections} -d{duration.TotalSeconds:0}s --latency -H 'Connection: close'` from a client namespace{(clientCpu is { } cc ? $" on CPU {cc}" : "")}, every response's body checked by a Lua script; " +
                           $"{rounds.Select(r => r.Number).DefaultIfEmpty(0).Max()} rounds, the lanes interleaved in every round (in turn, then in reverse order the next round), the sandbox's conntrack table flushed before each; medians of the rounds.").AppendLine();
        md.AppendLine("mesh = the daemon's sandbox table (`NodePlanner.PlanSandbox`, written by `NfTablesExecutor`: per service only map elements); naive-iptables = the same semantics as a jump per published port and a chain per service (`ScaleScenario.NaiveIptables`), walked in order.").AppendLine();
        md.AppendLine("| lane | services | new connections/s (median) | ÷ smallest size: ratio of medians; median of the paired rounds' ratios (min..max) | p50 / p99 µs (median) | p50 ÷ smallest | responses per task, min..max in a round | errors (socket / non-2xx / wrong body) | load average (1 min) after each round | rules written in |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var lane in rounds.GroupBy(r => r.Lane))
        {
            var first = lane.First();
            var smallest = rounds.Where(r => r.Layout == first.Layout).Min(r => r.Services);
            var baseline = rounds.Where(r => r.Layout == first.Layout && r.Services == smallest).ToList();
            var (rps, p50, p99) = (Median(lane.Select(r => r.Rps)), Median(lane.Select(r => r.P50Us)), Median(lane.Select(r => r.P99Us)));
            var (baseRps, baseP50) = (Median(baseline.Select(r => r.Rps)), Median(baseline.Select(r => r.P50Us)));
            var paired = PairedRatios(rounds, first.Layout, first.Services);
            md.AppendLine(inv, $"| {lane.Key} | {first.Services:N0} | {rps:0} | {(baseRps > 0 ? rps / baseRps : 0):0.00}; {Median(paired):0.00} ({(paired.Count > 0 ? paired.Min() : 0):0.00}..{(paired.Count > 0 ? paired.Max() : 0):0.00}) | {p50:0} / {p99:0} | {(baseP50 > 0 ? p50 / baseP50 : 0):0.00} | {lane.Min(r => r.MinPerTask)}..{lane.Max(r => r.MaxPerTask)} | {lane.Sum(r => r.SocketErrors)} / {lane.Sum(r => r.Non2xx)} / {lane.Sum(r => r.Wrong)} | {string.Join(", ", lane.Select(r => r.LoadAverage.ToString("0.00", inv)))} | {programming.GetValueOrDefault(lane.Key).TotalMilliseconds:0} ms |");
        }

        md.AppendLine();
        foreach (var layout in rounds.Select(r => r.Layout).Distinct())
        {
            var sizes = rounds.Where(r => r.Layout == layout).Select(r => r.Services).Distinct().Order().ToList();
            foreach (var n in sizes.Skip(1))
            {
                var ratio = Median(rounds.Where(r => r.Layout == layout && r.Services == n).Select(r => r.Rps)) / Math.Max(1e-9, Median(rounds.Where(r => r.Layout == layout && r.Services == sizes[0]).Select(r => r.Rps)));
                var paired = PairedRatios(rounds, layout, n);
                var interval = MedianInterval(paired) is { } ci ? string.Create(inv, $", 95 % interval {ci.Low:0.00}..{ci.High:0.00}") : "";
                md.AppendLine(inv, $"**{(layout == FirstPacketLayout.Mesh ? "mesh" : "naive iptables")}: new connections/s at {n:N0} services ÷ at {sizes[0]:N0}: median of the {paired.Count} paired rounds' ratios {Median(paired):0.00}{interval}** (ratio of the medians {ratio:0.00})  ");
            }
        }

        var problems = rounds.Where(r => r.Problem is not null).ToList();
        if (problems.Count > 0)
        {
            md.AppendLine().AppendLine("Problems:").AppendLine();
            foreach (var r in problems)
                md.AppendLine(inv, $"- round {r.Number} {r.Lane}: {r.Problem}");
        }

        md.AppendLine().AppendLine("Rounds (new connections/s):").AppendLine();
        foreach (var lane in rounds.GroupBy(r => r.Lane))
            md.AppendLine(inv, $"- {lane.Key}: {string.Join(", ", lane.Select(r => r.Rps.ToString("0", inv)))}");
        return md.ToString();
    }
}
