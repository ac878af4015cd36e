using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Mesh.LoadTests.Cli;
using Mesh.LoadTests.Servers;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Lab;

/// <summary>
/// The embedded resolver against dnsmasq without the lab: the resolver in a child process hosted as the daemon
/// hosts it (<see cref="DnsBenchServer"/>, the daemon's runtimeconfig, so the same GC settings), dnsmasq with the
/// same records, both on loopback addresses of this namespace; dnsperf against both, interleaved (throughput at 100
/// outstanding, exact percentiles at a fixed rate). Beside dnsperf's figures, what each embedded run cost the server
/// process (allocation, collections, GC pause, CPU and thread-pool work items per query) and dnsmasq's CPU per query.
/// </summary>
public static class DnsBench
{
    /// <param name="Metrics">How each embedded resolver exports its metrics (<see cref="DnsBenchServer.Exporters"/>): one resolver process
    /// per entry, all measured in the same run (the first on <paramref name="Embedded"/>, the next ones 10, 20… addresses above it).</param>
    public sealed record Options(Settings Settings, IPEndPoint Embedded, IPEndPoint Dnsmasq, int Rate, IReadOnlyList<string> Metrics, IReadOnlyList<string> ServerEnv, int Scrapes = 500);

    private sealed record Cost(string Resolver, bool Latency, long Answered, DnsServerStats? Server, double CpuMs);

    public static async Task<int> RunAsync(Options o, CancellationToken ct)
    {
        var s = o.Settings;
        if (!Dnsperf.Installed) throw new InvalidOperationException("dns-bench needs dnsperf and dnsmasq: apt-get install -y dnsperf dnsmasq-base");
        var inv = CultureInfo.InvariantCulture;
        var outRoot = s.Out ?? Path.Combine(Runner.DefaultResultsRoot(), $"dns-bench-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(outRoot);
        var log = Console.Error;
        var hosts = Path.GetFullPath(Path.Combine(outRoot, "dnsmasq.hosts"));
        await File.WriteAllTextAsync(hosts, DnsBenchServer.HostsFile(DnsBenchServer.State()), ct).ConfigureAwait(false);

        if (o.Metrics.Count == 0 || o.Metrics.Distinct().Count() != o.Metrics.Count) throw new ArgumentException("--metrics: one or more distinct exporters");
        var servers = new Dictionary<string, ServerProcess>();
        using var dnsmasq = StartDnsmasq(o.Dnsmasq, hosts);
        try
        {
            var targets = new List<DnsperfTarget>();
            for (var i = 0; i < o.Metrics.Count; i++)
            {
                var at = i == 0 ? o.Embedded : new IPEndPoint(Offset(o.Embedded.Address, 10 * i), o.Embedded.Port);
                var name = o.Metrics.Count == 1 ? "embedded" : $"embedded-{o.Metrics[i]}";
                servers[name] = await ServerProcess.StartAsync(at, o.Metrics[i], o.ServerEnv, ct).ConfigureAwait(false);
                await CheckSameAnswersAsync(at, o.Dnsmasq, log, ct).ConfigureAwait(false);
                targets.Add(new(name, at.Address.ToString(), at.Port));
            }

            targets.Add(new("dnsmasq", o.Dnsmasq.Address.ToString(), o.Dnsmasq.Port));
            string[] names = [DnsBenchServer.Service, $"tasks.{DnsBenchServer.Service}"];
            var rounds = Math.Max(1, s.Rounds);
            var seconds = Math.Max(1, (int)Math.Round(s.Duration.TotalSeconds / rounds));

            // Warm-up (not counted): tiered JIT, thread pool, dnsmasq's cache.
            var warm = new Dnsperf.Options(1, Math.Max(1, (int)Math.Ceiling(s.Warmup.TotalSeconds)), o.Rate);
            var warmDir = Directory.CreateDirectory(Path.Combine(outRoot, "warmup")).FullName;
            await Dnsperf.CompareAsync(null, targets, names, warm with { Rounds = 1 }, warmDir, TextWriter.Null, ct).ConfigureAwait(false);

            var costs = new List<Cost>();
            DnsServerStats before = default;
            double cpuBefore = 0;
            async Task Hook(DnsperfTarget t, int round, bool latency, bool starting)
            {
                if (servers.TryGetValue(t.Name, out var server))
                {
                    var now = await server.StatsAsync(ct).ConfigureAwait(false);
                    if (starting) before = now;
                    else costs.Add(new Cost(t.Name, latency, 0, now - before, (now - before).CpuMs));
                }
                else
                {
                    var now = ProcessCpuMs(dnsmasq.Id);
                    if (starting) cpuBefore = now;
                    else costs.Add(new Cost(t.Name, latency, 0, null, now - cpuBefore));
                }
            }

            var result = await Dnsperf.CompareAsync(null, targets, names, new Dnsperf.Options(rounds, seconds, o.Rate), outRoot, log, ct, Hook).ConfigureAwait(false);
            // pair each cost with its run (same order: the hook ran once after each run)
            for (int i = 0; i < costs.Count; i++) costs[i] = costs[i] with { Answered = result.Runs[i].Sent - result.Runs[i].Lost };

            var md = new StringBuilder("# dns-bench\n\n");
            md.AppendLine(inv, $"No lab: embedded resolver in a child process per metrics exporter (`dns-serve`, the daemon's runtimeconfig{(o.ServerEnv.Count > 0 ? ", env " + string.Join(" ", o.ServerEnv) : "")}; metrics: {string.Join(", ", o.Metrics)}) from {o.Embedded}, querier {DnsBenchServer.Querier}; dnsmasq on {o.Dnsmasq} with the same records (`web` → VIP, `tasks.web` → 3 task IPs); queries alternate between the two names.");
            md.AppendLine().AppendLine(inv, $"machine: {Environment.ProcessorCount} cores, load average at the end {LoadAverage()}");
            md.Append(result.Markdown);
            md.AppendLine().AppendLine("## what the runs cost the resolvers").AppendLine();
            md.AppendLine("| resolver | phase | answered | CPU µs/query | bytes allocated/query | gen0/1/2 collections | GC pause total | GC pause per s | thread-pool items/query | lock contentions |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var g in costs.GroupBy(c => (c.Resolver, c.Latency)))
            {
                var n = Math.Max(1, g.Sum(c => c.Answered));
                var cpu = g.Sum(c => c.CpuMs) * 1000 / n;
                var phase = g.Key.Latency ? $"{o.Rate:N0} q/s" : "100 outstanding";
                if (g.First().Server is null)
                {
                    md.AppendLine(inv, $"| {g.Key.Resolver} | {phase} | {n:N0} | {cpu:0.0} | – | – | – | – | – | – |");
                    continue;
                }
                var st = g.Select(c => c.Server!.Value).ToList();
                var pause = st.Sum(x => x.PauseMs);
                md.AppendLine(inv, $"| {g.Key.Resolver} | {phase} | {n:N0} | {cpu:0.0} | {(double)st.Sum(x => x.AllocatedBytes) / n:0} | {st.Sum(x => x.Gen0)}/{st.Sum(x => x.Gen1)}/{st.Sum(x => x.Gen2)} | {pause:0.0} ms | {pause / (g.Count() * seconds):0.00} ms | {(double)st.Sum(x => x.WorkItems) / n:0.00} | {st.Sum(x => x.Contentions)} |");
            }
            md.AppendLine().AppendLine(inv, $"server threads at the end: {costs.Where(c => c.Server is not null).Select(c => c.Server!.Value.Threads).LastOrDefault()}");
            await AppendScrapeCostAsync(md, servers, o.Scrapes, outRoot, ct).ConfigureAwait(false);

            await File.WriteAllTextAsync(Path.Combine(outRoot, "summary.md"), md.ToString(), CancellationToken.None).ConfigureAwait(false);
            await log.WriteLineAsync($"report: {Path.GetFullPath(Path.Combine(outRoot, "summary.md"))}").ConfigureAwait(false);
            Console.Out.Write(md.ToString());
            return ct.IsCancellationRequested ? 130 : result.Runs.Any(r => r.Sent == 0 || r.Lost > r.Sent / 100) ? 2 : 0;
        }
        finally
        {
            foreach (var server in servers.Values) await server.DisposeAsync().ConfigureAwait(false);
            if (!dnsmasq.HasExited) { dnsmasq.Kill(); await dnsmasq.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false); }
        }
    }

    private static IPAddress Offset(IPAddress address, int by)
    {
        var bytes = address.GetAddressBytes();
        var last = bytes[^1] + by;
        if (last > 254) throw new ArgumentException($"no room for another resolver {by} addresses above {address}");
        bytes[^1] = (byte)last;
        return new IPAddress(bytes);
    }

    /// <summary>
    /// What a scrape of each resolver's <c>/metrics</c> costs, after the dnsperf runs (so every series exists, as in a
    /// daemon that has served for a while): <paramref name="scrapes"/> sequential GETs, the body's bytes, and the server
    /// process's CPU and allocation between its stats before and after, per scrape.
    /// </summary>
    private static async Task AppendScrapeCostAsync(StringBuilder md, Dictionary<string, ServerProcess> servers, int scrapes, string outRoot, CancellationToken ct)
    {
        var inv = CultureInfo.InvariantCulture;
        md.AppendLine().AppendLine(inv, $"## what a scrape of /metrics costs ({scrapes} sequential scrapes each, after the runs)").AppendLine();
        md.AppendLine("| resolver | bytes/scrape | series (lines not starting with #) | CPU µs/scrape (server) | bytes allocated/scrape (server) | wall µs/scrape |");
        md.AppendLine("| --- | --- | --- | --- | --- | --- |");
        using var http = new HttpClient();
        foreach (var (name, server) in servers)
        {
            if (server.MetricsUrl is not { } url)
            {
                md.AppendLine(inv, $"| {name} | – | – | – | – | – |");
                continue;
            }

            var body = await http.GetStringAsync(url, ct).ConfigureAwait(false); // warm
            await File.WriteAllTextAsync(Path.Combine(outRoot, $"metrics-{name}.prom"), body, ct).ConfigureAwait(false);
            var before = await server.StatsAsync(ct).ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            long bytes = 0;
            for (var i = 0; i < scrapes; i++)
            {
                bytes += (await http.GetByteArrayAsync(url, ct).ConfigureAwait(false)).Length;
            }

            var wall = clock.Elapsed;
            var cost = await server.StatsAsync(ct).ConfigureAwait(false) - before;
            var series = body.Split('\n').Count(l => l.Length > 0 && l[0] != '#');
            md.AppendLine(inv, $"| {name} | {(double)bytes / scrapes:N0} | {series} | {cost.CpuMs * 1000 / scrapes:0} | {(double)cost.AllocatedBytes / scrapes:N0} | {wall.TotalMicroseconds / scrapes:0} |");
        }
    }

    private static Process StartDnsmasq(IPEndPoint at, string hosts)
    {
        var psi = new ProcessStartInfo("dnsmasq") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in (string[])["--keep-in-foreground", "--no-resolv", "--no-hosts", $"--addn-hosts={hosts}", $"--listen-address={at.Address}",
                     "--bind-interfaces", $"--port={at.Port}", "--pid-file=", "--user=root", "--cache-size=10000", "--log-facility=-"])
            psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException("dnsmasq did not start");
    }

    /// <summary>Same sorted A records from both, or the comparison means nothing.</summary>
    private static async Task CheckSameAnswersAsync(IPEndPoint embedded, IPEndPoint dnsmasq, TextWriter log, CancellationToken ct)
    {
        foreach (var name in new[] { DnsBenchServer.Service, $"tasks.{DnsBenchServer.Service}" })
        {
            var deadline = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
            string ours, theirs;
            while (true)
            {
                ours = await DigAsync(embedded, name, ct).ConfigureAwait(false);
                theirs = await DigAsync(dnsmasq, name, ct).ConfigureAwait(false);
                if ((ours == theirs && ours.Length > 0) || Stopwatch.GetTimestamp() > deadline) break;
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            await log.WriteLineAsync($"check {name}: embedded [{ours}] dnsmasq [{theirs}]").ConfigureAwait(false);
            if (ours != theirs || ours.Length == 0) throw new InvalidOperationException($"the two resolvers answer {name} differently: embedded [{ours}], dnsmasq [{theirs}]");
        }
    }

    private static async Task<string> DigAsync(IPEndPoint server, string name, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("dig") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["+short", "+time=1", "+tries=1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), $"@{server.Address}", name, "A"]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dig did not start");
        var text = await p.StandardOutput.ReadToEndAsync(ct).ConfigureAwait(false);
        await p.WaitForExitAsync(ct).ConfigureAwait(false);
        return string.Join(",", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order(StringComparer.Ordinal));
    }

    /// <summary>utime + stime of a process from /proc (clock ticks of 10 ms).</summary>
    private static double ProcessCpuMs(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(f[11], CultureInfo.InvariantCulture) + long.Parse(f[12], CultureInfo.InvariantCulture)) * 10.0;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    /// <summary>This program started again as <c>dns-serve</c> under the daemon's runtimeconfig (mesh.runtimeconfig.json beside it).</summary>
    private sealed class ServerProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly SemaphoreSlim _gate = new(1, 1);

        private ServerProcess(Process process) => _process = process;

        /// <summary>Where it serves its metrics; null without an exporter.</summary>
        public Uri? MetricsUrl { get; private set; }

        public static async Task<ServerProcess> StartAsync(IPEndPoint at, string metrics, IReadOnlyList<string> env, CancellationToken ct)
        {
            var dir = AppContext.BaseDirectory;
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = false };
            var daemonConfig = Path.Combine(dir, "mesh.runtimeconfig.json");
            if (File.Exists(daemonConfig)) { psi.ArgumentList.Add("exec"); psi.ArgumentList.Add("--runtimeconfig"); psi.ArgumentList.Add(daemonConfig); }
            foreach (var a in (string[])[Path.Combine(dir, "Mesh.LoadTests.dll"), "dns-serve", "--udp", at.ToString()]) psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("--metrics");
            psi.ArgumentList.Add(metrics);
            foreach (var kv in env)
            {
                var eq = kv.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0) throw new FormatException($"--server-env wants NAME=VALUE, got '{kv}'");
                psi.Environment[kv[..eq]] = kv[(eq + 1)..];
            }
            var p = Process.Start(psi) ?? throw new InvalidOperationException("dns-serve did not start");
            var self = new ServerProcess(p);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            var line = await p.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false);
            if (line?.StartsWith("ready ", StringComparison.Ordinal) != true)
            {
                await self.DisposeAsync().ConfigureAwait(false);
                throw new InvalidOperationException($"dns-serve did not start: '{line}'");
            }
            self.MetricsUrl = line[6..] is "-" ? null : new Uri(line[6..]);
            return self;
        }

        public async Task<DnsServerStats> StatsAsync(CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await _process.StandardInput.WriteLineAsync("stats".AsMemory(), ct).ConfigureAwait(false);
                await _process.StandardInput.FlushAsync(ct).ConfigureAwait(false);
                return DnsServerStats.Parse(await _process.StandardOutput.ReadLineAsync(ct).ConfigureAwait(false) ?? throw new InvalidOperationException("dns-serve exited"));
            }
            finally
            {
                _gate.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            try { _process.StandardInput.Close(); } catch (IOException) { }
            if (!await WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false) && !_process.HasExited) _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            _process.Dispose();
            _gate.Dispose();
        }

        private async Task<bool> WaitAsync(TimeSpan t)
        {
            using var cts = new CancellationTokenSource(t);
            try { await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false); return true; }
            catch (OperationCanceledException) { return false; }
        }
    }
}
