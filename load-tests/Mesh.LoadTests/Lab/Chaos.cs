using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Lab;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Core;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// Chaos under load (issue 9 part 8): open-loop HTTP through every node's published port at once while one fault
/// at a time is injected, and the failed requests per fault. Faults: each daemon SIGKILLed and restarted in turn
/// (both stores); one etcd member of three SIGKILLed then restarted; 5% loss (+50 ms delay where the kernel has
/// sch_netem) on one node's underlay link for 20 s; one node partitioned from the other nodes and etcd for longer
/// than its lease; the embedded store's holder SIGKILLed while writes run (acknowledged writes compared with the
/// state after its restart). Every fault gets its own load run, so its count is its own.
/// </summary>
public static class Chaos
{
    public sealed record Options(Settings Settings, IReadOnlyList<string> Stores, int LeaseTtlSeconds, TimeSpan Down, TimeSpan LossWindow);

    /// <summary>One row of the report. <paramref name="Met"/> null: the fault has no target (figures only); <c>skipped</c> rows carry no figures.</summary>
    private sealed record FaultResult(string Fault, string Store, long Requests, long Failed, double P99Us, string Target, bool? Met, string Notes, bool Skipped = false);

    /// <summary>What an injection hands back: how to judge the load it ran under, once the load's reports are in.</summary>
    private delegate (bool? Met, string Target, string Notes) Verdict(IReadOnlyList<ChaosLoad.Entry> entries);

    private const string ChaosTable = "mesh-chaos";

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var s = o.Settings;
        var rate = s.Rate ?? (s.Smoke ? 40 : 100);
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"chaos-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        var results = new List<FaultResult>();
        string? crash = null;
        var total = Stopwatch.StartNew();
        try
        {
            foreach (var store in o.Stores)
            {
                await using var lab = await LabSession.UpAsync(log, ct, store: store, leaseTtlSeconds: o.LeaseTtlSeconds, etcdMembers: store == "etcd" ? 3 : 1).ConfigureAwait(false);
                await lab.FlushConntrackAsync().ConfigureAwait(false);
                var run = new FaultRun(lab, store, rate, s, o, outRoot, log, results, ct);
                if (s.Smoke)
                {
                    // CI: the store holder (node 1's daemon) SIGKILLed and restarted during writes — a daemon kill and the
                    // store's durability in one lab restart (each restart is ~40 s on the shared 2-core box).
                    if (store == "embedded") await run.StoreHolderKillAsync().ConfigureAwait(false);
                    else await run.DaemonKillAsync(2).ConfigureAwait(false);
                    continue;
                }
                for (var i = 1; i <= lab.Plan.Nodes; i++) await run.DaemonKillAsync(i).ConfigureAwait(false);
                if (store == "etcd")
                {
                    await run.EtcdMemberKillAsync(1).ConfigureAwait(false);
                    await run.PartitionAsync(2).ConfigureAwait(false);
                }
                else
                {
                    await run.UnderlayLossAsync(2).ConfigureAwait(false);
                    await run.StoreHolderKillAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            crash = e.ToString();
            await log.WriteLineAsync($"chaos: the scenario failed: {e}").ConfigureAwait(false);
        }

        var md = Render(results, o, rate, crash, total.Elapsed);
        await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), md, CancellationToken.None).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(outRoot, "faults.json"), System.Text.Json.JsonSerializer.Serialize(results, new System.Text.Json.JsonSerializerOptions(Reporting.ReportBuilder.Json)
        {
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals, // a skipped row's p99 is NaN
        }), CancellationToken.None).ConfigureAwait(false);
        Console.Out.Write(md);
        if (ct.IsCancellationRequested) return 130;
        if (crash is not null) return 1;
        return results.Any(r => r.Met == false) ? 2 : 0;
    }

    private static string Render(List<FaultResult> results, Options o, double rate, string? crash, TimeSpan took)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder("# chaos\n\n");
        md.AppendLine(inv, $"{Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}. Open loop {rate:0} req/s through **each** node's :{LabPlan.DemoPublished} at once (a new connection per request, from `{LabPlan.Client}`, one source address per node), a separate load run per fault; timeout {Durations.Format(o.Settings.Timeout)}. {(o.Settings.Smoke ? "Smoke: fewer faults. " : "")}Whole run {took.TotalSeconds:0} s.").AppendLine();
        md.AppendLine("| fault | store | requests | failed | p99 | target | met | notes |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in results)
        {
            var met = r.Skipped ? "skipped" : r.Met switch { true => "yes", false => "**no**", null => "—" };
            var p99 = double.IsNaN(r.P99Us) ? "-" : r.P99Us >= 10_000 ? $"{r.P99Us / 1000:0} ms" : $"{r.P99Us / 1000:0.0} ms";
            md.AppendLine(inv, $"| {r.Fault} | {r.Store} | {(r.Skipped ? "-" : r.Requests.ToString("N0", inv))} | {(r.Skipped ? "-" : r.Failed.ToString("N0", inv))} | {(r.Skipped ? "-" : p99)} | {r.Target} | {met} | {r.Notes.Replace("|", "\\|", StringComparison.Ordinal)} |");
        }
        md.AppendLine();
        foreach (var r in results.Where(r => r.Skipped)) md.AppendLine(inv, $"skipped: {r.Fault} ({r.Store}): {r.Notes}");
        if (crash is not null) md.AppendLine().AppendLine("**chaos: the scenario failed before every fault ran:**").AppendLine("```").AppendLine(crash).AppendLine("```");
        var judged = results.Where(r => r.Met is not null).ToList();
        md.AppendLine().AppendLine(inv, $"**chaos: {judged.Count(r => r.Met == true)} of {judged.Count} faults met their target; failed requests: {string.Join(", ", results.Where(r => !r.Skipped).Select(r => $"{r.Fault} [{r.Store}] {r.Failed} of {r.Requests}"))}**");
        return md.ToString();
    }

    /// <summary>The faults of one lab (one store), each under its own load run.</summary>
    private sealed class FaultRun(LabSession lab, string store, double rate, Settings s, Options o, string outRoot, TextWriter log, List<FaultResult> results, CancellationToken ct)
    {
        private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
        private int _runs;

        /// <summary>Load before the fault, once every generator sends: its warm-up plus a measured stretch.</summary>
        private TimeSpan Lead => s.Warmup + TimeSpan.FromSeconds(s.Smoke ? 1.5 : 3);

        private TimeSpan Tail => TimeSpan.FromSeconds(s.Smoke ? 2 : 4);

        /// <summary>
        /// Starts the load, waits until every generator sends and then <see cref="Lead"/>, injects the fault (which returns how to judge the run), keeps the
        /// load on for <see cref="Tail"/>, stops it and adds the row. A fault that throws still stops the load, and the
        /// scenario then fails (a broken lab makes every later figure meaningless).
        /// </summary>
        private async Task UnderLoadAsync(string fault, Func<Action<string>, Task<Verdict>> inject)
        {
            var slug = new string(fault.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-').ToArray());
            var dir = Path.Combine(outRoot, $"{store}-{slug}");
            await log.WriteLineAsync($"chaos [{store}] {fault}: starting the load ({rate:0} req/s through each of {lab.Plan.Nodes} nodes)").ConfigureAwait(false);
            await lab.FlushConntrackAsync().ConfigureAwait(false);
            var events = new List<(DateTimeOffset At, string What)>();
            void Event(string what)
            {
                events.Add((DateTimeOffset.UtcNow, what));
                log.WriteLine($"chaos [{store}] {fault}: {what}");
            }
            var load = await ChaosLoad.StartAsync(lab, _runs++, rate, s, dir, ct).ConfigureAwait(false);
            Verdict verdict;
            DateTimeOffset faultAt;
            try
            {
                await load.WaitRunningAsync(lab, TimeSpan.FromSeconds(90), ct).ConfigureAwait(false);
                Event("load running");
                await Task.Delay(Lead, ct).ConfigureAwait(false);
                faultAt = DateTimeOffset.UtcNow;
                Event("inject");
                verdict = await inject(Event).ConfigureAwait(false);
                Event("fault over");
                await Task.Delay(Tail, ct).ConfigureAwait(false);
            }
            catch
            {
                await load.StopAsync().ConfigureAwait(false);
                throw;
            }
            var entries = await load.StopAsync().ConfigureAwait(false);
            var (met, target, notes) = verdict(entries);
            var extra = new List<string>();
            foreach (var e in entries)
            {
                var v = e.Variant;
                if (v is null) { extra.Add($"via n{e.Node}: no report (exit {e.Code})"); met = false; continue; }
                // A fault injected before the measured load ran would be a pass that measured nothing.
                var before = v.Series.Where(p => p.T < At(e, faultAt)).Sum(p => p.Ok + p.Failed);
                if (before == 0) { extra.Add($"via n{e.Node}: no measured request before the fault"); met = false; }
            }
            var perEntry = string.Join(", ", entries.Select(e => e.Variant is { } v ? $"n{e.Node} {v.Failed}/{v.Requests}" : $"n{e.Node} -"));
            // failures that completed before the injection are the load's own (counted, but told apart: a timeout
            // completes 5 s after its send, so one sent just before the fault still lands after it)
            var failedBefore = entries.Sum(e => e.Report is null ? 0 : ChaosLoad.FailedBetween(e, double.NegativeInfinity, At(e, faultAt)));
            if (failedBefore > 0) extra.Add($"{failedBefore} of the failures completed before the fault was injected");
            // in flight when the load stopped (not counted by the generator): shown, so a hung request cannot hide there
            var unfinished = entries.Sum(e => e.Variant?.Unfinished ?? 0);
            if (unfinished > 0) extra.Add($"{unfinished} requests still in flight when the load stopped (not counted)");
            var errors = entries.Select(e => e.Variant).OfType<Reporting.VariantReport>().SelectMany(v => v.Errors).GroupBy(kv => kv.Key).Select(g => $"{g.Key} {g.Sum(kv => kv.Value)}").ToList();
            var t0 = events[0].At;
            var timeline = "timeline: " + string.Join("; ", events.Select(x => string.Create(Inv, $"+{(x.At - t0).TotalSeconds:0.0} s {x.What}")));
            results.Add(new FaultResult(fault, store, entries.Sum(e => e.Variant?.Requests ?? 0), entries.Sum(e => e.Variant?.Failed ?? 0), ChaosLoad.MergedP99Us(entries), target, met,
                string.Join("; ", new[] { notes, $"failed/requests via {perEntry}", errors.Count == 0 ? "" : "errors: " + string.Join(", ", errors), string.Join("; ", extra), timeline }.Where(x => x.Length > 0))));
            await log.WriteLineAsync($"chaos [{store}] {fault}: {results[^1].Failed} failed of {results[^1].Requests}").ConfigureAwait(false);
        }

        /// <summary>Seconds from the event to the report's time axis of one entry.</summary>
        private static double At(ChaosLoad.Entry e, DateTimeOffset when) => (when - e.Report!.StartedUtc).TotalSeconds;

        private static (bool? Met, string Target, string Notes) ZeroFailed(IReadOnlyList<ChaosLoad.Entry> entries, string notes) =>
            (entries.All(e => e.Variant is { Failed: 0 }), "0 failed", notes);

        private async Task KillAllInAsync(string netns)
        {
            var pids = await lab.Runner.RunAsync("ip", ["netns", "pids", netns], null, ct).ConfigureAwait(false);
            var list = pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (list.Length == 0) throw new InvalidOperationException($"nothing runs in {netns}: nothing to kill");
            foreach (var pid in list) await lab.Runner.RunAsync("kill", ["-KILL", pid], null, ct).ConfigureAwait(false);
        }

        /// <summary>What the lab does to bring a dead process back: <c>mesh lab up</c> on the existing lab (it starts what is missing and waits until every node serves every task).</summary>
        private async Task<TimeSpan> LabUpAsync()
        {
            var sw = Stopwatch.StartNew();
            await lab.Cluster.UpAsync(lab.Plan, ct).ConfigureAwait(false);
            await lab.WaitAppliedAsync(ct, TimeSpan.FromSeconds(90)).ConfigureAwait(false);
            return sw.Elapsed;
        }

        public Task DaemonKillAsync(int node) => UnderLoadAsync($"daemon n{node} SIGKILL + restart", async Event =>
        {
            await KillAllInAsync(LabPlan.NodeName(node)).ConfigureAwait(false);
            Event($"{LabPlan.NodeName(node)} SIGKILLed");
            await Task.Delay(o.Down, ct).ConfigureAwait(false);
            Event("mesh lab up");
            var took = await LabUpAsync().ConfigureAwait(false);
            Event("every daemon applied the current revision");
            return entries => ZeroFailed(entries, string.Create(Inv, $"down {Durations.Format(o.Down)}, then lab up + every node applied in {took.TotalSeconds:0.0} s"));
        });

        public Task EtcdMemberKillAsync(int member) => UnderLoadAsync($"etcd member m{member} of 3 SIGKILL + restart", async Event =>
        {
            await KillAllInAsync(LabPlan.EtcdName(member)).ConfigureAwait(false);
            Event($"{LabPlan.EtcdName(member)} SIGKILLed");
            // long enough for the daemons' clients to notice and use the other members
            await Task.Delay(o.Down + TimeSpan.FromSeconds(3), ct).ConfigureAwait(false);
            // a write while the member is down: the store must still take it (2 of 3 is a quorum)
            var wrote = await TryWriteAsync(ApiClientFactory.Store(LabPlan.Api(LabPlan.NodeName(2))), "chaos-etcd-down").ConfigureAwait(false);
            Event($"a write through n2 with m{member} down: {wrote}");
            Event("mesh lab up");
            var took = await LabUpAsync().ConfigureAwait(false);
            Event($"m{member} back, every daemon applied the current revision");
            return entries =>
            {
                var (met, target, notes) = ZeroFailed(entries, string.Create(Inv, $"down {Durations.Format(o.Down + TimeSpan.FromSeconds(3))}; write with it down: {wrote}; lab up + applied in {took.TotalSeconds:0.0} s"));
                return (met & wrote.StartsWith("ok", StringComparison.Ordinal), target + ", writes still work", notes);
            };
        });

        private async Task<string> TryWriteAsync(IClusterStore via, string name)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                await via.CreateServiceAsync(new ServiceSpec { Name = name, Mode = ServiceMode.Dnsrr }, ct).ConfigureAwait(false);
                return string.Create(Inv, $"ok in {sw.ElapsedMilliseconds} ms");
            }
            catch (Exception e) when (e is StoreUnavailableException or HttpRequestException or TaskCanceledException or InvalidOperationException)
            {
                return string.Create(Inv, $"failed after {sw.ElapsedMilliseconds} ms ({e.GetType().Name}: {e.Message})");
            }
        }

        /// <summary>
        /// Loss (and delay) on one node's underlay leg. tc netem when the kernel has sch_netem; without it a clear
        /// "skipped" row for netem, and the loss alone with nftables (numgen random, both directions) instead.
        /// </summary>
        public async Task UnderlayLossAsync(int node)
        {
            var ns = LabPlan.NodeName(node);
            var window = o.LossWindow;
            var netem = await lab.TryInAsync(ns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "5%", "delay", "50ms").ConfigureAwait(false);
            if (netem.ExitCode == 0)
            {
                await lab.TryInAsync(ns, "tc", "qdisc", "del", "dev", "eth0", "root").ConfigureAwait(false);
                await UnderLoadAsync($"underlay n{node} netem 5% loss + 50 ms delay, {Durations.Format(window)}", async Event =>
                {
                    await lab.InAsync(ns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "5%", "delay", "50ms").ConfigureAwait(false);
                    Event("netem on");
                    try { await Task.Delay(window, ct).ConfigureAwait(false); }
                    finally { await lab.TryInAsync(ns, "tc", "qdisc", "del", "dev", "eth0", "root").ConfigureAwait(false); }
                    Event("netem off");
                    return _ => (null, "report failures and p99", "egress of n2's underlay leg (tc netem)");
                }).ConfigureAwait(false);
                return;
            }
            var why = (netem.Stderr + netem.Stdout).Trim();
            results.Add(new FaultResult($"underlay n{node} netem 5% loss + 50 ms delay", store, 0, 0, double.NaN, "report failures and p99", null,
                $"no sch_netem in this kernel (tc: {why}); the loss alone is measured with nftables below, no delay", Skipped: true));
            await log.WriteLineAsync($"chaos: skipped: no sch_netem in this kernel (tc qdisc add dev eth0 root netem: {why}); measuring 5% loss with nftables instead, without the 50 ms delay").ConfigureAwait(false);
            await UnderLoadAsync($"underlay n{node} 5% loss (nft numgen, no delay), {Durations.Format(window)}", async Event =>
            {
                await AddChaosTableAsync(ns, "iifname \"eth0\" numgen random mod 100 < 5 drop", "oifname \"eth0\" numgen random mod 100 < 5 drop").ConfigureAwait(false);
                Event("5% loss on");
                try { await Task.Delay(window, ct).ConfigureAwait(false); }
                finally { await lab.TryInAsync(ns, "nft", "delete", "table", "inet", ChaosTable).ConfigureAwait(false); }
                Event("loss off");
                return _ => (null, "report failures and p99", $"{ns} eth0, both directions: 5% of packets in and 5% out dropped (≈10% per round trip leg pair); delay not emulated");
            }).ConfigureAwait(false);
        }

        /// <summary>Our own table in a node's namespace (the daemon owns only its own tables), hooked before conntrack and NAT.</summary>
        private async Task AddChaosTableAsync(string ns, string inRule, string outRule)
        {
            await lab.InAsync(ns, "nft", "add", "table", "inet", ChaosTable).ConfigureAwait(false);
            await lab.InAsync(ns, "nft", "add", "chain", "inet", ChaosTable, "pre", "{ type filter hook prerouting priority -400 ; }").ConfigureAwait(false);
            await lab.InAsync(ns, "nft", "add", "chain", "inet", ChaosTable, "out", "{ type filter hook output priority -400 ; }").ConfigureAwait(false);
            await lab.InAsync(ns, "nft", "add", "rule", "inet", ChaosTable, "pre", inRule).ConfigureAwait(false);
            await lab.InAsync(ns, "nft", "add", "rule", "inet", ChaosTable, "out", outRule).ConfigureAwait(false);
        }

        /// <summary>
        /// Node <paramref name="node"/> cut off from the other nodes and every etcd member (the client still reaches it)
        /// for twice its lease plus 5 s plus one request timeout. Until its lease expires and the others applied that, requests through the other
        /// nodes that land on its tasks fail; after that none may. Through the cut-off node itself, requests to tasks on
        /// other nodes fail for the whole partition (its overlay is cut): reported, not judged.
        /// </summary>
        public Task PartitionAsync(int node) => UnderLoadAsync($"partition n{node} > lease ({o.LeaseTtlSeconds} s)", async Event =>
        {
            var ns = LabPlan.NodeName(node);
            var nodeName = LabPlan.NodeName(node);
            var others = Enumerable.Range(1, lab.Plan.Nodes).Where(i => i != node).ToList();
            var peers = others.Select(LabPlan.NodeAddress).Concat(Enumerable.Range(1, lab.Plan.EtcdMembers).Select(LabPlan.EtcdAddress)).ToList();
            var set = "{ " + string.Join(", ", peers) + " }";
            var state = await lab.StateAsync(ct).ConfigureAwait(false);
            var web = state.Tasks.Where(t => t.Service == LabPlan.DemoService).ToList();
            var share = web.Count == 0 ? 0 : (double)web.Count(t => t.Node == nodeName) / web.Count;
            await AddChaosTableAsync(ns, $"ip saddr {set} drop", $"ip daddr {set} drop").ConfigureAwait(false);
            var cut = DateTimeOffset.UtcNow;
            Event($"{ns} cut off from {string.Join(", ", peers)}");
            // When did the store see it dead (its tasks node-down), and when did the others apply that?
            DateTimeOffset? expired = null, applied = null;
            // twice the lease, plus one request timeout so the judged "after" stretch is not eaten by timeouts of earlier sends
            var hold = TimeSpan.FromSeconds(2 * o.LeaseTtlSeconds + 5) + s.Timeout;
            try
            {
                var deadline = cut + hold;
                while (DateTimeOffset.UtcNow < deadline)
                {
                    if (expired is null)
                    {
                        var st = await lab.StateAsync(ct).ConfigureAwait(false);
                        if (st.Tasks.Where(t => t.Node == nodeName).All(t => t.State == TaskState.NodeDown))
                        {
                            expired = DateTimeOffset.UtcNow;
                            Event($"store: {nodeName}'s tasks node-down");
                            await lab.WaitAppliedAsync(ct, TimeSpan.FromSeconds(60), others).ConfigureAwait(false);
                            applied = DateTimeOffset.UtcNow;
                            Event($"n{string.Join(", n", others)} applied it");
                        }
                    }
                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
            }
            finally
            {
                await lab.TryInAsync(ns, "nft", "delete", "table", "inet", ChaosTable).ConfigureAwait(false);
            }
            var healed = DateTimeOffset.UtcNow;
            Event("partition healed");
            // It must come back: its lease renewed (a new one), its tasks running again, every node applied that.
            var back = Stopwatch.StartNew();
            string rejoin;
            try
            {
                while (true)
                {
                    var st = await lab.StateAsync(ct).ConfigureAwait(false);
                    if (st.Tasks.Where(t => t.Node == nodeName).All(t => t.State == TaskState.Running)) break;
                    if (back.Elapsed > TimeSpan.FromSeconds(90)) throw new TimeoutException($"{nodeName}'s tasks were not running again 90 s after the partition healed");
                    await Task.Delay(200, ct).ConfigureAwait(false);
                }
                await lab.WaitAppliedAsync(ct, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
                rejoin = string.Create(Inv, $"back and applied everywhere {back.Elapsed.TotalSeconds:0.0} s after the heal");
                Event("its tasks running again, applied everywhere");
            }
            catch (TimeoutException e)
            {
                rejoin = "NOT back: " + e.Message;
                Event(rejoin);
            }
            return entries =>
            {
                var via = entries.Where(e => others.Contains(e.Node)).ToList();
                var self = entries.FirstOrDefault(e => e.Node == node);
                // failures binned by the report's slots (1 s); 1 s of grace after each boundary for slot width and clocks
                long Window(IEnumerable<ChaosLoad.Entry> es, DateTimeOffset from, DateTimeOffset to) => es.Sum(e => ChaosLoad.FailedBetween(e, At(e, from), At(e, to)));
                long Requests(IEnumerable<ChaosLoad.Entry> es, DateTimeOffset from, DateTimeOffset to) =>
                    es.Sum(e => e.Variant?.Series.Where(p => p.T >= At(e, from) && p.T < At(e, to)).Sum(p => p.Ok + p.Failed) ?? 0);
                var end = DateTimeOffset.UtcNow;
                if (applied is null)
                    return (false, "only its tasks' requests fail until the lease expires, 0 after",
                        $"the store never marked {nodeName}'s tasks node-down within {hold.TotalSeconds:0} s (lease {o.LeaseTtlSeconds} s); {rejoin}");
                // The series bins failures by completion, and a timeout completes one timeout after its send: a failure
                // completing within a timeout after the boundary may have been sent before it. So "after" starts one
                // timeout later, and what completed in between is shown apart (its send time cannot be told).
                var grace = TimeSpan.FromSeconds(1);
                var late = applied.Value + grace + s.Timeout;
                var beforeFailed = Window(via, cut, applied.Value + grace);
                var beforeReq = Requests(via, cut, applied.Value + grace);
                var straddling = Window(via, applied.Value + grace, late < healed ? late : healed);
                var afterFailed = late < healed ? Window(via, late, healed) : 0;
                var afterHeal = Window(via, healed + grace + s.Timeout, end);
                var selfFailed = self is null ? 0 : Window([self], cut, healed + grace);
                var notes = string.Create(Inv,
                    $"lease expiry seen {(expired!.Value - cut).TotalSeconds:0.0} s after the cut, applied by the others at {(applied.Value - cut).TotalSeconds:0.0} s; " +
                    $"via the other nodes: {beforeFailed} of {beforeReq} failed until then ({(beforeReq == 0 ? 0 : 100.0 * beforeFailed / beforeReq):0}%, {nodeName}'s share of web's tasks {share * 100:0}%), " +
                    $"{straddling} completed within one timeout ({Durations.Format(s.Timeout)}) after that (sent before or after it: timeouts of earlier sends), {afterFailed} after, until the heal; {afterHeal} after the heal (+ one timeout); via {nodeName} itself (cut off from its peers' tasks): {selfFailed} failed during the partition; {rejoin}");
                var met = afterFailed == 0 && afterHeal == 0 && !rejoin.StartsWith("NOT", StringComparison.Ordinal);
                return (met, "via the others: only its tasks fail until lease expiry, 0 after", notes);
            };
        });

        /// <summary>
        /// The embedded store's holder (node 1's daemon) SIGKILLed while a writer creates services through node 2's API
        /// (which forwards to the holder). Writes must fail fast while it is down, and every write that was acknowledged
        /// must be in the state after its restart.
        /// </summary>
        public Task StoreHolderKillAsync() => UnderLoadAsync("store holder (n1) SIGKILL during writes", async Event =>
        {
            var writer = new ChaosWriter(new RemoteStore(ApiClientFactory.Create(LabPlan.Api(LabPlan.NodeName(2)), TimeSpan.FromSeconds(10))), "chaos-w");
            using var stopWriter = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var writing = writer.RunAsync(TimeSpan.FromMilliseconds(200), stopWriter.Token);
            await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
            await KillAllInAsync(LabPlan.NodeName(1)).ConfigureAwait(false);
            var killedAt = writer.Attempts;
            Event($"{LabPlan.NodeName(1)} (the store holder) SIGKILLed");
            await Task.Delay(o.Down, ct).ConfigureAwait(false);
            Event("mesh lab up");
            var took = await LabUpAsync().ConfigureAwait(false);
            Event("holder back, every daemon applied the current revision");
            // a few writes after the restart, so the acknowledged set spans before, during and after
            var resumed = writer.Acknowledged.Count;
            var until = Stopwatch.StartNew();
            while (writer.Acknowledged.Count < resumed + 3 && until.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(100, ct).ConfigureAwait(false);
            await stopWriter.CancelAsync().ConfigureAwait(false);
            await writing.ConfigureAwait(false);
            var after = await lab.StateAsync(ct).ConfigureAwait(false);
            var present = after.Services.Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
            var lost = writer.Acknowledged.Where(n => !present.Contains(n)).ToList();
            var failedButPresent = writer.Failed.Count(f => present.Contains(f.Name));
            var slowest = writer.Failed.Select(f => f.Ms).DefaultIfEmpty(0).Max();
            Event(string.Create(Inv, $"writes: {writer.Acknowledged.Count} acknowledged, {writer.Failed.Count} failed (slowest failure {slowest:0} ms), {lost.Count} acknowledged but missing"));
            return entries =>
            {
                var (met, _, _) = ZeroFailed(entries, "");
                var fast = slowest < 2000;
                var notes = string.Create(Inv,
                    $"writer through n2's API, one every 200 ms: {writer.Attempts} attempts ({killedAt} before the kill), {writer.Acknowledged.Count} acknowledged, {writer.Failed.Count} failed " +
                    $"(slowest failure {slowest:0} ms: {(fast ? "fast" : "NOT fast")}; {failedButPresent} failed but present after all, which is allowed), " +
                    $"**{lost.Count} acknowledged writes lost**{(lost.Count > 0 ? " (" + string.Join(", ", lost.Take(5)) + ")" : "")}; down {Durations.Format(o.Down)}, lab up + applied in {took.TotalSeconds:0.0} s; first write ok again {writer.RecoveredAfterMs(killedAt):0} ms after the kill");
                return (met == true && fast && lost.Count == 0, "0 failed requests, writes fail in < 2 s, 0 acknowledged writes lost", notes);
            };
        });
    }

    /// <summary>Creates services NAME-1, NAME-2, … one at a time, noting which were acknowledged and how long each failure took.</summary>
    private sealed class ChaosWriter(IClusterStore store, string prefix)
    {
        private readonly List<(int Attempt, long AtMs, bool Ok)> _log = [];
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public List<string> Acknowledged { get; } = [];
        public List<(string Name, double Ms)> Failed { get; } = [];
        public int Attempts { get; private set; }

        public async Task RunAsync(TimeSpan every, CancellationToken ct)
        {
            while (!ct.IsCancellationRequested)
            {
                var name = string.Create(CultureInfo.InvariantCulture, $"{prefix}{++Attempts}");
                var sw = Stopwatch.StartNew();
                try
                {
                    await store.CreateServiceAsync(new ServiceSpec { Name = name, Mode = ServiceMode.Dnsrr }, ct).ConfigureAwait(false);
                    lock (Acknowledged) Acknowledged.Add(name);
                    _log.Add((Attempts, _clock.ElapsedMilliseconds, true));
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return; // the stop, not an outcome: neither acknowledged nor failed
                }
                catch (Exception e) when (e is StoreUnavailableException or HttpRequestException or TaskCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
                {
                    lock (Acknowledged) Failed.Add((name, sw.Elapsed.TotalMilliseconds));
                    _log.Add((Attempts, _clock.ElapsedMilliseconds, false));
                }
                try { await Task.Delay(every, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
            }
        }

        /// <summary>Time from the attempt after <paramref name="attempt"/> to the first acknowledged one after a failure (0: none failed).</summary>
        public double RecoveredAfterMs(int attempt)
        {
            var after = _log.Where(x => x.Attempt > attempt).ToList();
            var firstFail = after.FirstOrDefault(x => !x.Ok);
            if (firstFail == default) return 0;
            var ok = after.FirstOrDefault(x => x.Ok && x.Attempt > firstFail.Attempt);
            var start = after.First().AtMs;
            return ok == default ? double.NaN : ok.AtMs - start;
        }
    }
}
