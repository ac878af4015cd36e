using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs.Netlink.NfTables;
using Mesh.LoadTests.Cli;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// Control-plane programming time for N services × T tasks, through the daemon's real code: the ingress
/// sandbox's nftables table (per service only map elements: <see cref="IngressSandboxTable.Builder"/> + the executor's
/// <see cref="NftTableMemory"/> (planning by the services that changed) + one nf_tables netlink batch,
/// planned against the state the executor last wrote, as the daemon does between resyncs; the resync's
/// reading it back over netlink is timed apart) and the host's iptables rules
/// (<see cref="HostRules.Build"/> + <see cref="IptablesPlanner.Plan"/> + <c>iptables-restore --noflush</c>), cold and
/// for one change (one task of one service replaced; the processes it starts are counted, and <c>--smoke</c> fails
/// unless there are none). Baseline: the naive way — the same sandbox semantics in
/// a kube-proxy-style iptables layout (a jump per published port, a chain per service with one
/// <c>statistic --mode random</c> DNAT per task), rewritten in full by <c>iptables-restore</c> for every change.
/// Each size runs in scratch namespaces <c>mesh-bench-scale-*</c>, created and deleted here.
/// </summary>
public static class ScaleScenario
{
    public const string SandboxIngressAddress = "10.255.0.2";

    public sealed record Row(int Services, int Tasks, double BuildMs, long RetainedBytes, long AllocatedBytes,
        double NftColdMs, double HostColdMs, double NftChangeMs, double HostChangeMs, long NftScriptBytes, long NftChangeBytes,
        double IptColdMs, double IptChangeMs, long IptScriptBytes, int BackendsRead, double NftChangeReadMs, double NftResyncMs,
        int ChangeProcesses, int ChangeMessages, double ChangePlanMs, double ChangeCommitMs, double ChangeBuildMs, double ChangeBuildWarmMs, int ChangeBuildServices, double WholePlanMs, double ReadStructureMs, double ReadElementsMs,
        double ResyncOtherTableMs, double ResyncForeignElementMs, double ResyncRuleByHandMs, double ResyncWholeReadMs, bool FollowedWithoutRead,
        double NftChangeWarmMs);

    public static async Task<int> RunAsync(IReadOnlyList<int> sizes, int tasksPerService, Settings s, CancellationToken ct)
    {
        if (!Environment.IsPrivilegedProcess) throw new InvalidOperationException("scale creates network namespaces: run as root");
        var runner = new ProcessCommandRunner(TimeSpan.FromMinutes(10)); // measures the tools at sizes far past the daemon's defaults
        var flavour = await IptablesFlavour.DetectAsync(runner, ct).ConfigureAwait(false);
        var rows = new List<Row>();
        foreach (var n in sizes)
        {
            ct.ThrowIfCancellationRequested();
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"scale: {n} services x {tasksPerService} tasks ...")).ConfigureAwait(false);
            rows.Add(await MeasureAsync(new CountingRunner(runner), flavour, n, tasksPerService, ct).ConfigureAwait(false));
            var r = rows[^1];
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"  nft cold {r.NftColdMs:0} ms, change {r.NftChangeMs:0.00} ms (5 more: median {r.NftChangeWarmMs:0.00} ms; planning {r.ChangePlanMs:0.00} ms, {r.ChangeMessages} messages, {r.ChangeProcesses} processes started); host iptables cold {r.HostColdMs:0} ms; naive iptables-restore cold {r.IptColdMs:0} ms, change {r.IptChangeMs:0} ms")).ConfigureAwait(false);
        }

        var md = Render(rows, flavour, tasksPerService);
        var dir = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"scale-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "report.md"), md, CancellationToken.None).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(dir, "report.json"), System.Text.Json.JsonSerializer.Serialize(rows, Reporting.ReportBuilder.Json), CancellationToken.None).ConfigureAwait(false);
        await Console.Error.WriteLineAsync($"reports: {Path.GetFullPath(dir)}/report.{{md,json}}").ConfigureAwait(false);
        Console.Out.Write(md);
        // Every task's slot read back, and (the exec counter) a change that started no process: nf_tables through
        // netlink, and the host's iptables unchanged by a task replaced, so not run.
        // And the resync after someone else's commit (another table; one element of Mesh's map) followed without a read.
        return rows.All(r => r.BackendsRead >= r.Services * r.Tasks && r.ChangeProcesses == 0 && r.FollowedWithoutRead) ? 0 : 4;
    }

    private static async Task<Row> MeasureAsync(CountingRunner runner, IptablesFlavour flavour, int n, int t, CancellationToken ct)
    {
        var ours = $"mesh-bench-scale-{n}";
        var naive = $"mesh-bench-scalei-{n}";
        // The host's rules in a namespace of their own, as on a node (the node's namespace is not the sandbox's): their
        // iptables-nft commits would otherwise move the sandbox's ruleset generation under its executor.
        var hostNs = $"mesh-bench-scaleh-{n}";
        var links = new LinkTool(runner);
        foreach (var ns in new[] { ours, naive, hostNs })
        {
            await runner.RunAsync("ip", ["netns", "del", ns], null, ct).ConfigureAwait(false);
            await links.EnsureNamespaceAsync(ns, ct).ConfigureAwait(false);
        }
        try
        {
            // Desired state: the cluster model → the sandbox's table and the host's rules, as the daemon builds them.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            var before = GC.GetTotalMemory(true);
            var allocBefore = GC.GetTotalAllocatedBytes(true);
            var sw = Stopwatch.StartNew();
            var state = MakeState(n, t);
            // The node's planner as the daemon keeps it: its sandbox builder keeps the services' elements between passes.
            var planner = new NodePlanner(true, new NodeNetworkOptions(), new IpvsOptions());
            var builder = planner.SandboxTable;
            var node = new ClusterNode { Name = "node0", AdvertiseAddress = "198.18.0.10", IngressSandboxIp = SandboxIngressAddress };
            var desired = planner.PlanSandbox(state, node, null).Backends.Table!;
            var host = HostRules.Build(state, new NodeNetworkOptions());
            var buildMs = sw.Elapsed.TotalMilliseconds;
            var allocated = GC.GetTotalAllocatedBytes(true) - allocBefore;
            var retained = GC.GetTotalMemory(true) - before;
            GC.KeepAlive(state);

            var nsOurs = NetworkNamespacePath.Named(ours);
            var nsHost = NetworkNamespacePath.Named(hostNs);
            // As the daemon runs it (DaemonHost): the executor trusts the table it just wrote until the resync.
            var nft = new NfTablesExecutor(TimeSpan.FromSeconds(30));
            var ipt = new IptablesExecutor(runner, flavour, TimeSpan.FromSeconds(30)); // as DaemonHost: trusts what it read or wrote until the resync
            var coldBatch = NftPlanner.Plan(desired, NftTableState.Missing)!.Build();

            sw.Restart();
            await nft.ConvergeAsync(nsOurs, desired, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
            var nftCold = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            await ipt.ApplyAsync(nsHost, host, HostRules.Tables, ct).ConfigureAwait(false);
            var hostCold = sw.Elapsed.TotalMilliseconds;

            // One change: a task of one service replaced by a new one (new address). The daemon's path between
            // resyncs: plan against the trusted state, commit the difference over netlink (no read).
            var changed = ReplaceOneTask(state, n / 2);
            sw.Restart();
            var desired2 = planner.PlanSandbox(changed, node, null).Backends.Table!; // only the changed service's elements are new
            var changeBuildMs = sw.Elapsed.TotalMilliseconds;
            var changeBuildServices = builder.LastPassServices;
            if (!builder.LastPassByChanges || changeBuildServices != 1)
                throw new InvalidOperationException($"scale: the pass after one task replaced looked at {changeBuildServices} services (by the changes: {builder.LastPassByChanges}), not the one it touched");
            var host2 = HostRules.Build(changed, new NodeNetworkOptions());
            var written = NftPlanner.Expected(desired);
            sw.Restart();
            var wholePlan = NftPlanner.Plan(desired2, written); // the whole-table planner (cold start, drift): stabilize the slots, diff every map
            var wholePlanMs = sw.Elapsed.TotalMilliseconds;
            var memory = NftTableMemory.Of(desired, desired); // what the executor remembers after the cold write
            GC.Collect(); // the whole-table plan's garbage is not the change's planning
            GC.WaitForPendingFinalizers();
            // The planning alone, as the executor does it (the changed service's groups; Plan changes nothing): the fastest
            // of 5, as a daemon that plans pass after pass runs it (the first calls pay the JIT's tiering, ~10-20 ms here).
            var changePlan = memory.Plan(desired2)?.Batch;
            var changePlanMs = double.MaxValue;
            for (var i = 0; i < 5; i++)
            {
                sw.Restart();
                _ = memory.Plan(desired2);
                changePlanMs = Math.Min(changePlanMs, sw.Elapsed.TotalMilliseconds);
            }

            if ((changePlan?.Count ?? 0) != (wholePlan?.Count ?? 0))
                throw new InvalidOperationException($"scale: the change planned by service ({changePlan?.Count ?? 0} messages) differs from the whole-table plan ({wholePlan?.Count ?? 0})");
            var changeBatch = changePlan?.Build();
            var processesBefore = runner.Started;
            sw.Restart();
            await nft.ConvergeAsync(nsOurs, desired2, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
            var nftChange = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            await ipt.ApplyAsync(nsHost, host2, HostRules.Tables, ct).ConfigureAwait(false);
            var hostChange = sw.Elapsed.TotalMilliseconds;
            var changeProcesses = runner.Started - processesBefore;

            // As a daemon runs it change after change: 5 more tasks replaced, each in another service, each built by the
            // planner and applied by the same executor (the first change above also pays what an executor does once after
            // its cold write); then back to the first change's table, which the checks below expect in the kernel.
            var builds = new List<double>();
            var applies = new List<double>();
            var next = changed;
            for (var k = 1; k <= 5; k++)
            {
                next = ReplaceOneTask(next, (n / 2 + k) % n);
                sw.Restart();
                var table = planner.PlanSandbox(next, node, null).Backends.Table!;
                builds.Add(sw.Elapsed.TotalMilliseconds);
                if (!builder.LastPassByChanges || builder.LastPassServices != 1)
                    throw new InvalidOperationException($"scale: a pass after one task replaced looked at {builder.LastPassServices} services (by the changes: {builder.LastPassByChanges})");
                sw.Restart();
                await nft.ConvergeAsync(nsOurs, table, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
                applies.Add(sw.Elapsed.TotalMilliseconds);
            }

            changeProcesses = runner.Started - processesBefore; // the first change (nft + host) and the 5 more
            await nft.ConvergeAsync(nsOurs, planner.PlanSandbox(changed, node, null).Backends.Table!, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
            builds.Sort();
            applies.Sort();
            // The commit alone (netlink and the kernel, no planning): the change undone, then redone and timed, on one socket.
            double changeCommitMs;
            using (var handle = NfTablesHandle.Open(nsOurs.Path))
            {
                var now = NftPlanner.Expected(NftPlanner.Stabilize(desired2, written));
                handle.Commit(NftPlanner.Plan(desired, now)!);
                var redo = NftPlanner.Plan(desired2, NftPlanner.Expected(NftPlanner.Stabilize(desired, now)))!;
                sw.Restart();
                handle.Commit(redo);
                changeCommitMs = sw.Elapsed.TotalMilliseconds;
            }

            // What the periodic resync pays (and what every sync paid before the executor trusted its writes):
            // reading the table back (chains, rule comments, map elements) over netlink; it also checks that the
            // change left the table as planned.
            sw.Restart();
            NftTableState actual;
            using (var handle = NfTablesHandle.Open(nsOurs.Path))
            {
                actual = NftTableState.Read(handle, Family.Ip, IngressSandboxTable.Name);
            }

            var nftRead = sw.Elapsed.TotalMilliseconds;

            // Where the read goes: the table's chains and rules (what a rule added by hand shows in) apart from the named
            // maps' elements (a dump per map), read again on their own.
            double readStructure, readElements;
            using (var handle = NfTablesHandle.Open(nsOurs.Path))
            {
                sw.Restart();
                _ = handle.GetChains(Family.Ip, IngressSandboxTable.Name);
                _ = handle.GetRules(Family.Ip, IngressSandboxTable.Name);
                var sets = handle.GetSets(Family.Ip, IngressSandboxTable.Name);
                readStructure = sw.Elapsed.TotalMilliseconds;
                sw.Restart();
                foreach (var set in sets)
                    _ = handle.GetElements(Family.Ip, IngressSandboxTable.Name, set.Name);
                readElements = sw.Elapsed.TotalMilliseconds;
            }

            if (NftPlanner.Plan(desired2, actual) is { } drift)
                throw new InvalidOperationException($"scale: after the change the table differs from the plan: {string.Join("; ", drift.Operations.Take(5))}");
            var backendsRead = actual.Maps[IngressSandboxTable.BackendsMap].Count;

            // The resync as the daemon runs it now: the trust has run out, the ruleset generation says nobody
            // committed since the executor last knew the table exactly, so it trusts it again without the listing.
            using var resyncing = new NfTablesExecutor(TimeSpan.Zero);
            await resyncing.ConvergeAsync(nsOurs, desired2, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false); // learns it (one listing)
            sw.Restart();
            var resyncChanged = await resyncing.ConvergeAsync(nsOurs, desired2, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
            var nftResync = sw.Elapsed.TotalMilliseconds;
            if (resyncChanged)
                throw new InvalidOperationException("scale: the resync pass changed an unchanged table");

            // The resync when the generation moved: someone else committed in the sandbox namespace, the executor follows
            // the kernel's notifications (its change log) instead of reading the table back. Another table: nothing to
            // do. One element of Mesh's backends map deleted by someone else: put back from the memory. A rule appended to a
            // Mesh chain (a skeleton chain): only the table's chains, rules and sets are read back (not the maps'
            // elements, which the memory knows) and the rule is taken out; the whole read is left for a doubt.
            var readsBefore = resyncing.Reads;
            var otherTableMs = await ForeignThenResync(new NfTablesBatch().AddTable(new Table(Family.Ip, "theirs")), expectChange: false).ConfigureAwait(false);
            var foreignElement = actual.Maps[IngressSandboxTable.BackendsMap].Values.First();
            var foreignElementMs = await ForeignThenResync(new NfTablesBatch().DeleteElements(Family.Ip, IngressSandboxTable.Name, IngressSandboxTable.BackendsMap, [foreignElement]), expectChange: true).ConfigureAwait(false);
            var followedWithoutRead = resyncing.Reads == readsBefore;
            var structureReadsBefore = resyncing.StructureReads;
            var ruleByHandMs = await ForeignThenResync(new NfTablesBatch().AddRule(new Rule(Family.Ip, IngressSandboxTable.Name, "dispatch", [new Counter()])), expectChange: true).ConfigureAwait(false);
            if (resyncing.Reads != readsBefore || resyncing.StructureReads != structureReadsBefore + 1)
                throw new InvalidOperationException($"scale: a rule added by hand read the table {resyncing.Reads - readsBefore} times and its structure {resyncing.StructureReads - structureReadsBefore} times, not 0 and 1 ({resyncing.LastDoubt})");
            using (var check = NfTablesHandle.Open(nsOurs.Path))
            {
                if (NftPlanner.Plan(desired2, NftTableState.Read(check, Family.Ip, IngressSandboxTable.Name)) is { } left)
                    throw new InvalidOperationException($"scale: after the rule by hand the resync left the table differing from the plan: {string.Join("; ", left.Operations.Take(5))}");
            }

            // The baseline in the same run: what a doubt still costs (and what a rule by hand cost before): the same rule,
            // then the whole table read back, planned whole and repaired (an executor that knows nothing yet).
            using (var other = NfTablesHandle.Open(nsOurs.Path))
            {
                other.Commit(new NfTablesBatch().AddRule(new Rule(Family.Ip, IngressSandboxTable.Name, "dispatch", [new Counter()])));
            }

            using var reading = new NfTablesExecutor(TimeSpan.Zero);
            sw.Restart();
            if (!await reading.ConvergeAsync(nsOurs, desired2, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false) || reading.Reads != 1)
                throw new InvalidOperationException("scale: the whole read did not repair the rule by hand");
            var wholeReadMs = sw.Elapsed.TotalMilliseconds;

            async Task<double> ForeignThenResync(NfTablesBatch foreign, bool expectChange)
            {
                using (var other = NfTablesHandle.Open(nsOurs.Path))
                {
                    other.Commit(foreign);
                }

                sw.Restart();
                var repaired = await resyncing.ConvergeAsync(nsOurs, desired2, Family.Ip, IngressSandboxTable.Name, ct).ConfigureAwait(false);
                var ms = sw.Elapsed.TotalMilliseconds;
                if (repaired != expectChange)
                    throw new InvalidOperationException($"scale: after {foreign.Describe(0)} the resync {(repaired ? "changed" : "did not change")} the table");
                return ms;
            }

            // Naive baseline: full iptables-restore rewrite, cold and for the same change.
            var nsNaive = NetworkNamespacePath.Named(naive);
            var naiveCold = NaiveIptables(state, t);
            sw.Restart();
            await runner.RunCheckedInAsync(nsNaive, flavour.Restore, ["-w", "5"], naiveCold, ct).ConfigureAwait(false);
            var iptCold = sw.Elapsed.TotalMilliseconds;
            var naiveChange = NaiveIptables(changed, t);
            sw.Restart();
            await runner.RunCheckedInAsync(nsNaive, flavour.Restore, ["-w", "5"], naiveChange, ct).ConfigureAwait(false);
            var iptChange = sw.Elapsed.TotalMilliseconds;

            return new Row(n, t, Math.Round(buildMs, 1), retained, allocated, Math.Round(nftCold, 1), Math.Round(hostCold, 1), Math.Round(nftChange, 1), Math.Round(hostChange, 1),
                coldBatch.Length, changeBatch?.Length ?? 0,
                Math.Round(iptCold, 1), Math.Round(iptChange, 1), Encoding.UTF8.GetByteCount(naiveCold), backendsRead, Math.Round(nftRead, 1), Math.Round(nftResync, 2),
                changeProcesses, changePlan?.Count ?? 0, Math.Round(changePlanMs, 2), Math.Round(changeCommitMs, 2), Math.Round(changeBuildMs, 2), Math.Round(builds[builds.Count / 2], 2), changeBuildServices, Math.Round(wholePlanMs, 1), Math.Round(readStructure, 2), Math.Round(readElements, 1),
                Math.Round(otherTableMs, 2), Math.Round(foreignElementMs, 2), Math.Round(ruleByHandMs, 2), Math.Round(wholeReadMs, 1), followedWithoutRead, Math.Round(applies[applies.Count / 2], 2));
        }
        finally
        {
            foreach (var ns in new[] { ours, naive, hostNs })
                await runner.RunAsync("ip", ["netns", "del", ns], null, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>N services, each publishing one TCP port (20000 + i), with T running tasks on the ingress network (<see cref="SyntheticState"/>).</summary>
    internal static ClusterState MakeState(int n, int t) => SyntheticState.Make(n, t, TaskAddress);

    // 10.16.0.0 upward: 100,000 task addresses do not fit the /16 ingress subnet; the rules do not care.
    private static string TaskAddress(int index) => Cidr.ToAddress(0x0A100000u + (uint)index).ToString();

    internal static ClusterState ReplaceOneTask(ClusterState state, int serviceIndex)
    {
        var service = state.Services[serviceIndex].Name;
        var old = state.Tasks.First(t => t.Service == service);
        var index = state.Tasks.Count + 1;
        var replacement = SyntheticState.Task(service, 1000, index, TaskAddress(index)) with { Name = service + ".new" };
        return state with { Revision = state.Revision + 1, Tasks = state.Tasks.Select(x => ReferenceEquals(x, old) ? replacement : x).ToArray() };
    }

    /// <summary>The naive layout: every table rewritten by one iptables-restore (no --noflush), kube-proxy style.</summary>
    internal static string NaiveIptables(ClusterState state, int t)
    {
        var sb = new StringBuilder(state.Services.Count * t * 120);
        sb.Append("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
        var byService = state.Tasks.GroupBy(x => x.Service).ToDictionary(g => g.Key, g => g.OrderBy(x => x.Name, StringComparer.Ordinal).Select(x => x.Addresses[OverlayNetwork.IngressName]).ToList());
        foreach (var s in state.Services) sb.Append(":SVC-").Append(s.Name).Append(" - [0:0]\n");
        foreach (var s in state.Services)
        {
            var port = s.Ports[0].Published.ToString(CultureInfo.InvariantCulture);
            sb.Append("-A PREROUTING -i eth1 -p tcp -m tcp --dport ").Append(port).Append(" -j SVC-").Append(s.Name).Append('\n');
        }
        foreach (var s in state.Services)
        {
            var backends = byService[s.Name];
            for (var k = 0; k < backends.Count; k++)
            {
                sb.Append("-A SVC-").Append(s.Name);
                if (k < backends.Count - 1)
                    sb.Append(" -m statistic --mode random --probability ").Append((1.0 / (backends.Count - k)).ToString("0.00000000000", CultureInfo.InvariantCulture));
                sb.Append(" -j DNAT --to-destination ").Append(backends[k]).Append('\n');
            }
        }
        sb.Append("-A POSTROUTING -o eth0 -m conntrack --ctstate DNAT -j SNAT --to-source ").Append(SandboxIngressAddress).Append('\n');
        sb.Append("COMMIT\n");
        return sb.ToString();
    }

    internal static string Render(IReadOnlyList<Row> rows, IptablesFlavour flavour, int t)
    {
        var inv = CultureInfo.InvariantCulture;
        var md = new StringBuilder();
        md.AppendLine("# scale: control-plane programming time").AppendLine();
        md.AppendLine(inv, $"{Environment.ProcessorCount} cores, kernel {File.ReadAllText("/proc/sys/kernel/osrelease").Trim()}, iptables flavour {flavour.Name}; N services × {t} tasks, one published TCP port each.").AppendLine();
        md.AppendLine("ours = the sandbox's nftables table (per service only map elements; a shared picking chain per balancing mode and task count) through the daemon's executor (plan against the state it last wrote, commit the difference as one nf_tables netlink batch; read the table back only on the 30 s resync when the ruleset generation moved and the kernel's notifications cannot say what changed, shown apart) + the host's iptables rules (`iptables-save`, plan, `iptables-restore --noflush`); " +
                      "naive = the same sandbox semantics as kube-proxy-style iptables chains, the whole table rewritten by `iptables-restore` for every change.").AppendLine();
        md.AppendLine("| services | ours cold (nft + host) | ours, one task replaced (nft + host); 5 more, nft part, median | resync: reading the table (netlink; chains + rules / elements, read again apart) / generation unchanged | resync, generation moved (someone else's commit, followed in the notifications): another table / one element of Mesh's map deleted, put back / a rule added to a Mesh chain (chains, rules and sets read back, no element) / the same repaired by a whole read (what a doubt costs) | naive iptables-restore cold | naive, one task replaced (full rewrite) | naive/ours, change | nf_tables batch cold / change | change: messages / processes started | change: planning (fastest of 5) / commit alone | change: building the desired table (first / median of 5 more; services looked at) / whole-table planning | naive script | build desired state | retained / allocated |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var r in rows)
        {
            var oursChange = r.NftChangeMs + r.HostChangeMs;
            md.AppendLine(inv, $"| {r.Services:N0} | {Ms(r.NftColdMs + r.HostColdMs)} ({Ms(r.NftColdMs)} + {Ms(r.HostColdMs)}) | {Ms(oursChange)} ({r.NftChangeMs.ToString("0.00", inv)} ms + {Ms(r.HostChangeMs)}); {r.NftChangeWarmMs.ToString("0.00", inv)} ms | {Ms(r.NftChangeReadMs)} ({r.ReadStructureMs.ToString("0.00", inv)} ms / {Ms(r.ReadElementsMs)}) / {r.NftResyncMs.ToString("0.00", inv)} ms | {r.ResyncOtherTableMs.ToString("0.00", inv)} ms / {r.ResyncForeignElementMs.ToString("0.00", inv)} ms / {r.ResyncRuleByHandMs.ToString("0.00", inv)} ms / {Ms(r.ResyncWholeReadMs)}{(r.FollowedWithoutRead ? "" : " (**read**)")} | {Ms(r.IptColdMs)} | {Ms(r.IptChangeMs)} | {r.IptChangeMs / oursChange:0.0}× | {Kb(r.NftScriptBytes)} / {Kb(r.NftChangeBytes)} | {r.ChangeMessages} / {r.ChangeProcesses} | {r.ChangePlanMs.ToString("0.00", inv)} / {r.ChangeCommitMs.ToString("0.00", inv)} ms | {r.ChangeBuildMs.ToString("0.00", inv)} / {r.ChangeBuildWarmMs.ToString("0.00", inv)} ms; {r.ChangeBuildServices} / {Ms(r.WholePlanMs)} | {Kb(r.IptScriptBytes)} | {Ms(r.BuildMs)} | {Kb(r.RetainedBytes)} / {Kb(r.AllocatedBytes)} |");
        }
        md.AppendLine();
        foreach (var r in rows)
            md.AppendLine(inv, $"**{r.Services:N0} services: one change naive/ours {r.IptChangeMs / (r.NftChangeMs + r.HostChangeMs):0.0}×, cold naive/ours {r.IptColdMs / (r.NftColdMs + r.HostColdMs):0.00}×**  ");
        return md.ToString();

        static string Ms(double ms) => ms >= 1000 ? (ms / 1000).ToString("0.00 's'", CultureInfo.InvariantCulture) : ms.ToString("0 'ms'", CultureInfo.InvariantCulture);
        static string Kb(long b) => b < 10240 ? b.ToString("0 'B'", CultureInfo.InvariantCulture) : b >= 1 << 20 ? (b / 1048576.0).ToString("0.0 'MB'", CultureInfo.InvariantCulture) : (b / 1024.0).ToString("0 'KB'", CultureInfo.InvariantCulture);
    }

    /// <summary>The exec counter: every process the daemon's executors start goes through their command runner.</summary>
    private sealed class CountingRunner(ICommandRunner inner) : ICommandRunner
    {
        private int _started;

        public int Started => Volatile.Read(ref _started);

        public Task<CommandResult> RunAsync(string file, IReadOnlyList<string> arguments, string? standardInput = null, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _started);
            return inner.RunAsync(file, arguments, standardInput, cancellationToken);
        }
    }
}
