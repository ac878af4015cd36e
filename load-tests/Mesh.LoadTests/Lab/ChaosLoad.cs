using System.Globalization;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Metrics;
using Mesh.LoadTests.Reporting;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// Open-loop HTTP load through every node's published port at once, one load generator per node (this program
/// again, in <c>mesh-client</c>, each from its own source address), running until <see cref="StopAsync"/>: a fault
/// takes as long as it takes (a daemon's restart on a loaded box is seconds to tens of seconds), so the load is
/// not given a fixed duration that a slow restart could outlast.
/// </summary>
public sealed class ChaosLoad
{
    /// <summary>
    /// Source address of the load through node i in the run-th load run: 198.18.0.1Ri (R = run mod 8, i ≤ 9). A fresh
    /// address per run, so no TIME_WAIT socket or conntrack entry of the previous run (60 s) meets this one, and
    /// "the generator sends" can be seen from the socket count.
    /// </summary>
    public static string SourceOf(int node, int run) => string.Create(CultureInfo.InvariantCulture, $"198.18.0.{110 + 10 * (run % 8) + node}");

    private readonly CancellationTokenSource _stop = new();
    private readonly List<(int Node, Task<(int Code, RunReport? Report)> Run)> _runs = [];

    /// <summary>Pool size per generator: above rate × timeout at the default rate (100/s × 5 s), so only a request's own fate fails it.</summary>
    public const int MinConnections = 1000;

    private readonly int _run;

    private ChaosLoad(int run) => _run = run;

    public sealed record Entry(int Node, int Code, RunReport? Report)
    {
        public VariantReport? Variant => Report?.Variants.FirstOrDefault();
    }

    /// <summary>Sets up the client's source addresses (idempotent) and starts one generator per node.</summary>
    public static async Task<ChaosLoad> StartAsync(LabSession lab, int run, double ratePerNode, Settings s, string outDir, CancellationToken ct)
    {
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1").ConfigureAwait(false);
        await lab.InAsync(LabPlan.Client, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535").ConfigureAwait(false);
        var load = new ChaosLoad(run);
        for (var i = 1; i <= lab.Plan.Nodes; i++)
        {
            await lab.InAsync(LabPlan.Client, "ip", "addr", "replace", $"{SourceOf(i, run)}/24", "dev", "eth0").ConfigureAwait(false);
            load._baselines[i] = await SocketsFromAsync(lab, SourceOf(i, run)).ConfigureAwait(false);
            var args = new List<string>
            {
                "http", "--url", $"http://{LabPlan.NodeAddress(i)}:{LabPlan.DemoPublished}/", "--name", $"via-n{i}",
                "--rate", ratePerNode.ToString(CultureInfo.InvariantCulture),
                // stopped by SIGINT when the fault is over; 5 min only bounds a run whose stop never came (1 s series slots)
                "--duration", "5m", "--warmup", Durations.Format(s.Warmup), "--bind", SourceOf(i, run),
                // -c is the HTTP pool's connection cap: with the default 16, a few connections stuck on a dead backend
                // queue every later request behind them until it times out, and one stall reads as a cascade
                "--timeout", Durations.Format(s.Timeout), "-c", Math.Max(s.Connections, MinConnections).ToString(CultureInfo.InvariantCulture),
                "--new-connection", "-q",
            };
            load._runs.Add((i, LabSession.RunInNamespaceAsync(LabPlan.Client, args, Path.Combine(outDir, $"via-n{i}"), ct, load._stop.Token)));
        }
        return load;
    }

    /// <summary>
    /// Waits until every generator sends (its source address has new sockets), so the fault is not injected while a
    /// .NET process is still starting on a loaded box. TIME_WAIT sockets of an earlier run still count, hence "more than before".
    /// </summary>
    public async Task WaitRunningAsync(LabSession lab, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        foreach (var (node, run) in _runs)
        {
            var baseline = _baselines[node];
            while (await SocketsFromAsync(lab, SourceOf(node, _run)).ConfigureAwait(false) < baseline + 5)
            {
                if (run.IsCompleted) throw new InvalidOperationException($"the load generator through n{node} ended before it sent (exit {(await run.ConfigureAwait(false)).Code})");
                if (DateTimeOffset.UtcNow > deadline) throw new TimeoutException($"the load generator through n{node} sent nothing within {timeout.TotalSeconds:0} s");
                await Task.Delay(200, ct).ConfigureAwait(false);
            }
        }
    }

    private readonly Dictionary<int, int> _baselines = [];

    private static async Task<int> SocketsFromAsync(LabSession lab, string source)
    {
        var r = await lab.TryInAsync(LabPlan.Client, "ss", "-Htan", "src", source).ConfigureAwait(false);
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    /// <summary>Stops every generator (each writes the report of what it measured) and returns their reports.</summary>
    public async Task<IReadOnlyList<Entry>> StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        var entries = new List<Entry>();
        foreach (var (node, run) in _runs)
        {
            var (code, report) = await run.ConfigureAwait(false);
            entries.Add(new Entry(node, code, report));
        }
        _stop.Dispose();
        return entries;
    }

    /// <summary>p99 of all entries' requests together (histograms merged by adding counts), in µs; NaN without data.</summary>
    public static double MergedP99Us(IEnumerable<Entry> entries)
    {
        LatencyHistogram? all = null;
        foreach (var v in entries.Select(e => e.Variant).OfType<VariantReport>())
        {
            var h = v.Histogram.ToHistogram();
            if (all is null) all = h;
            else all.Add(h);
        }
        return all is null || all.Count == 0 ? double.NaN : all.ValueAtPercentile(99) / 1000.0;
    }

    /// <summary>Failed requests of one entry that completed in [from, to) seconds on its report's time axis.</summary>
    public static long FailedBetween(Entry e, double from, double to) =>
        e.Variant?.Series.Where(p => p.T >= from && p.T < to).Sum(p => p.Failed) ?? 0;
}
