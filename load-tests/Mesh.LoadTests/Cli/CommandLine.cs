using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Reporting;
using Mesh.LoadTests.Servers;
using Mesh.LoadTests.Steps;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Cli;

/// <summary>Everything the common options resolve to.</summary>
public sealed record Settings
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan RoundWarmup { get; init; } = TimeSpan.FromMilliseconds(500);
    public int Rounds { get; init; } = 1;
    public int Connections { get; init; } = 16;
    public double? Rate { get; init; }
    public TimeSpan RampUp { get; init; } = TimeSpan.Zero;
    public int MaxInFlight { get; init; } = 10_000;
    public long? Iterations { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan Pause { get; init; } = TimeSpan.Zero;
    public IReadOnlyList<IPAddress> Bind { get; init; } = [];
    public string? Out { get; init; }
    public bool Smoke { get; init; }
    public double CoreBudget { get; init; } = Environment.ProcessorCount;
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(5);
    public bool Quiet { get; init; }
    public bool Wrk { get; init; }
    public TimeSpan? WrkDuration { get; init; }
    public double? MaxErrorRate { get; init; }
    public bool NoReport { get; init; }

    public LoadSimulation Simulation => Rate is { } r
        ? new OpenLoop(r, Duration, RampUp, MaxInFlight)
        : new ClosedLoop(Connections, Iterations is null ? Duration : null, Iterations);

    public IPAddress? BindFor(int variant) => Bind.Count == 0 ? null : Bind[variant % Bind.Count];

    /// <summary>CI smoke mode: every scenario in about a second per variant.</summary>
    public Settings AsSmoke() => this with
    {
        Smoke = true,
        Duration = Duration < TimeSpan.FromSeconds(1) ? Duration : TimeSpan.FromSeconds(1),
        Warmup = TimeSpan.FromMilliseconds(200),
        RoundWarmup = TimeSpan.FromMilliseconds(100),
        Rounds = Math.Min(Rounds, 2),
        Rate = Rate is { } r ? Math.Min(r, 500) : null,
        RampUp = RampUp > TimeSpan.FromMilliseconds(200) ? TimeSpan.FromMilliseconds(200) : RampUp,
        Iterations = Iterations is { } n ? Math.Min(n, 1000) : null,
        WrkDuration = TimeSpan.FromSeconds(1),
        Pause = TimeSpan.Zero,
    };
}

public static class CommandLine
{
    /// <summary>
    /// Ctrl+C (SIGINT) or SIGTERM stops the load, and the run still writes its (partial) report and
    /// exits 130: the signals only cancel the token, they do not end the process.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        using var cts = new CancellationTokenSource();
        void Stop(PosixSignalContext c)
        {
            if (cts.IsCancellationRequested) return; // a second signal: default action, the process ends
            c.Cancel = true;
            Console.Error.WriteLine("stopping: finishing in-flight requests and writing the report (again to force)");
            cts.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        return await Build().Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, cts.Token).ConfigureAwait(false);
    }

    private sealed class CommonOptions
    {
        public readonly Option<string> Duration = new("--duration", "-d") { Description = "measured time per variant (split across rounds): 5s, 500ms, 2m", DefaultValueFactory = _ => "10s" };
        public readonly Option<string> Warmup = new("--warmup") { Description = "load applied before measuring (excluded from the figures)", DefaultValueFactory = _ => "1s" };
        public readonly Option<int?> Rounds = new("--rounds") { Description = "interleaved rounds per variant (compare scenarios default to 4)" };
        public readonly Option<int> Connections = new("--connections", "-c", "--concurrency") { Description = "closed loop: virtual users; HTTP: connection pool size", DefaultValueFactory = _ => 16 };
        public readonly Option<double?> Rate = new("--rate") { Description = "open loop: requests per second (latency measured from the intended send time)" };
        public readonly Option<string> RampUp = new("--ramp-up") { Description = "open loop: linear ramp from 0 to --rate (excluded from the figures)", DefaultValueFactory = _ => "0s" };
        public readonly Option<int> MaxInFlight = new("--max-in-flight") { Description = "open loop: bound on concurrent requests", DefaultValueFactory = _ => 10_000 };
        public readonly Option<long?> Iterations = new("--iterations", "-n") { Description = "closed loop: stop after this many measured iterations (instead of --duration)" };
        public readonly Option<string> Timeout = new("--timeout") { Description = "per-request timeout", DefaultValueFactory = _ => "5s" };
        public readonly Option<string> Pause = new("--pause") { Description = "pause between rounds (e.g. to let TIME_WAIT drain)", DefaultValueFactory = _ => "0s" };
        public readonly Option<string?> Bind = new("--bind") { Description = "source address(es) for the client sockets, one for all or a comma list, one per variant (the lab client: 198.18.0.100)" };
        public readonly Option<string?> Out = new("--out", "-o") { Description = "directory for report.md / report.json / report.html (default load-tests/results/<scenario>-<time> from the repo root, else ./loadtest-results/...)" };
        public readonly Option<bool> Smoke = new("--smoke") { Description = "CI mode: ~1 s per variant, short warm-up, ≤2 rounds" };
        public readonly Option<double?> CoreBudget = new("--generator-cores") { Description = "cores the generator may use before it is flagged as saturated (default: all)" };
        public readonly Option<string> ProgressInterval = new("--progress-interval") { Description = "progress line period when stderr is not a terminal (0 = off)", DefaultValueFactory = _ => "5s" };
        public readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "no progress line" };
        public readonly Option<double?> MaxErrorRate = new("--max-error-rate") { Description = "exit with code 2 when a variant's failed fraction exceeds this (e.g. 0.001)" };
        public readonly Option<bool> NoReport = new("--no-report") { Description = "print the summary only, write no files" };

        public IEnumerable<Option> All => [Duration, Warmup, Rounds, Connections, Rate, RampUp, MaxInFlight, Iterations, Timeout, Pause, Bind, Out, Smoke, CoreBudget, ProgressInterval, Quiet, MaxErrorRate, NoReport];

        public Settings Read(ParseResult p, int defaultRounds)
        {
            var s = new Settings
            {
                Duration = Durations.Parse(p.GetValue(Duration)!),
                Warmup = Durations.Parse(p.GetValue(Warmup)!),
                Rounds = Math.Max(1, p.GetValue(Rounds) ?? defaultRounds),
                Connections = Math.Max(1, p.GetValue(Connections)),
                Rate = p.GetValue(Rate),
                RampUp = Durations.Parse(p.GetValue(RampUp)!),
                MaxInFlight = Math.Max(1, p.GetValue(MaxInFlight)),
                Iterations = p.GetValue(Iterations),
                Timeout = Durations.Parse(p.GetValue(Timeout)!),
                Pause = Durations.Parse(p.GetValue(Pause)!),
                Bind = (p.GetValue(Bind) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(IPAddress.Parse).ToList(),
                Out = p.GetValue(Out),
                CoreBudget = p.GetValue(CoreBudget) ?? Environment.ProcessorCount,
                ProgressInterval = Durations.Parse(p.GetValue(ProgressInterval)!),
                Quiet = p.GetValue(Quiet),
                MaxErrorRate = p.GetValue(MaxErrorRate),
                NoReport = p.GetValue(NoReport),
            };
            s = s with { RoundWarmup = s.Warmup / 2 };
            return p.GetValue(Smoke) ? s.AsSmoke() : s;
        }
    }

    private static Command Scenario(string name, string description, Action<Command> options,
        Func<ParseResult, Settings, CancellationToken, Task<int>> action, int defaultRounds = 1)
    {
        var cmd = new Command(name, description);
        var common = new CommonOptions();
        options(cmd);
        foreach (var o in common.All) cmd.Options.Add(o);
        cmd.SetAction(async (p, ct) =>
        {
            try
            {
                return await action(p, common.Read(p, defaultRounds), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or System.Net.Sockets.SocketException)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        });
        return cmd;
    }

    public static RootCommand Build()
    {
        var root = new RootCommand("Mesh load-test runner: closed/open-loop load, HDR latency histograms, interleaved A/B comparisons, Markdown/JSON/HTML reports.");

        // ---- HTTP
        var url = new Option<string>("--url") { Description = "target URL", Required = true };
        var newConn = new Option<bool>("--new-connection") { Description = "a new TCP connection per request (sends Connection: close)" };
        var wrk = new Option<bool>("--wrk") { Description = "also run wrk -t1 -cN against each URL (if on PATH) and report it beside our figures" };
        var wrkDuration = new Option<string?>("--wrk-duration") { Description = "wrk run length per variant (default: --duration)" };
        var name = new Option<string>("--name") { Description = "variant name in the report", DefaultValueFactory = _ => "target" };
        root.Subcommands.Add(Scenario("http", "HTTP GET load against one URL (closed loop, or open loop with --rate)",
            c => { c.Options.Add(url); c.Options.Add(newConn); c.Options.Add(wrk); c.Options.Add(wrkDuration); c.Options.Add(name); },
            (p, s, ct) =>
            {
                s = s with { Wrk = p.GetValue(wrk), WrkDuration = p.GetValue(wrkDuration) is { } wd ? Durations.Parse(wd) : s.WrkDuration };
                var u = new Uri(p.GetValue(url)!);
                bool nc = p.GetValue(newConn);
                var variants = new[] { HttpVariant(p.GetValue(name)!, u, nc, s, 0) };
                return Runner.ExecuteAsync("http", $"HTTP GET {u}{(nc ? ", new connection per request" : ", keep-alive")}", variants, s, ct, nc);
            }));

        var a = new Option<string>("--a") { Description = "first target (the numerator of the ratio)", Required = true };
        var b = new Option<string>("--b") { Description = "second target (the baseline)", Required = true };
        var names = new Option<string>("--names") { Description = "names of the two variants, comma-separated", DefaultValueFactory = _ => "a,b" };
        root.Subcommands.Add(Scenario("http-compare", "HTTP GET against two URLs in interleaved rounds; prints the A/B throughput ratio last",
            c => { c.Options.Add(a); c.Options.Add(b); c.Options.Add(names); c.Options.Add(newConn); c.Options.Add(wrk); c.Options.Add(wrkDuration); },
            (p, s, ct) =>
            {
                s = s with { Wrk = p.GetValue(wrk), WrkDuration = p.GetValue(wrkDuration) is { } wd ? Durations.Parse(wd) : s.WrkDuration };
                var (na, nb) = Names(p.GetValue(names)!);
                bool nc = p.GetValue(newConn);
                var variants = new[] { HttpVariant(na, new Uri(p.GetValue(a)!), nc, s, 0), HttpVariant(nb, new Uri(p.GetValue(b)!), nc, s, 1) };
                return Runner.ExecuteAsync("http-compare", $"HTTP GET, {na} vs {nb}{(nc ? ", new connection per request" : ", keep-alive")}", variants, s, ct, nc);
            }, defaultRounds: 4));

        // ---- TCP
        var target = new Option<string>("--target") { Description = "host:port", Required = true };
        var rst = new Option<bool>("--rst") { Description = "close with RST (SO_LINGER 0) so no TIME_WAIT piles up" };
        root.Subcommands.Add(Scenario("tcp", "TCP connect + close rate against one endpoint",
            c => { c.Options.Add(target); c.Options.Add(rst); c.Options.Add(name); },
            (p, s, ct) =>
            {
                var ep = Steps.Net.ParseEndPoint(p.GetValue(target)!);
                var v = new Variant(p.GetValue(name)!, new ScenarioDefinition(p.GetValue(name)!, new TcpConnectStep(ep, p.GetValue(rst), SocketOptions(s, 0))));
                return Runner.ExecuteAsync("tcp", $"TCP connect/close to {ep}", [v], s, ct);
            }));
        root.Subcommands.Add(Scenario("tcp-compare", "TCP connect + close against two endpoints in interleaved rounds; ratio last",
            c => { c.Options.Add(a); c.Options.Add(b); c.Options.Add(names); c.Options.Add(rst); },
            (p, s, ct) =>
            {
                var (na, nb) = Names(p.GetValue(names)!);
                bool r = p.GetValue(rst);
                Variant V(string n, string t, int i) => new(n, new ScenarioDefinition(n, new TcpConnectStep(Steps.Net.ParseEndPoint(t), r, SocketOptions(s, i))));
                return Runner.ExecuteAsync("tcp-compare", $"TCP connect/close, {na} vs {nb}", [V(na, p.GetValue(a)!, 0), V(nb, p.GetValue(b)!, 1)], s, ct);
            }, defaultRounds: 4));

        // ---- UDP
        var payload = new Option<string>("--payload") { Description = "datagram payload text (after an 8-byte sequence number)", DefaultValueFactory = _ => "ping" };
        var size = new Option<int>("--size") { Description = "pad the payload to this many bytes" };
        var echo = new Option<bool>("--echo") { Description = "the target echoes: require the reply to carry our sequence number" };
        UdpStep Udp(ParseResult p, string t, Settings s, int i)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(p.GetValue(payload)!);
            int pad = p.GetValue(size);
            if (pad > bytes.Length) Array.Resize(ref bytes, pad);
            return new UdpStep(Steps.Net.ParseEndPoint(t), bytes, p.GetValue(echo), SocketOptions(s, i));
        }
        root.Subcommands.Add(Scenario("udp", "UDP request/response against one endpoint",
            c => { c.Options.Add(target); c.Options.Add(payload); c.Options.Add(size); c.Options.Add(echo); c.Options.Add(name); },
            (p, s, ct) =>
            {
                var n = p.GetValue(name)!;
                return Runner.ExecuteAsync("udp", $"UDP request/response to {p.GetValue(target)}", [new Variant(n, new ScenarioDefinition(n, Udp(p, p.GetValue(target)!, s, 0)))], s, ct);
            }));
        root.Subcommands.Add(Scenario("udp-compare", "UDP request/response against two endpoints in interleaved rounds; ratio last",
            c => { c.Options.Add(a); c.Options.Add(b); c.Options.Add(names); c.Options.Add(payload); c.Options.Add(size); c.Options.Add(echo); },
            (p, s, ct) =>
            {
                var (na, nb) = Names(p.GetValue(names)!);
                return Runner.ExecuteAsync("udp-compare", $"UDP request/response, {na} vs {nb}",
                    [new Variant(na, new ScenarioDefinition(na, Udp(p, p.GetValue(a)!, s, 0))), new Variant(nb, new ScenarioDefinition(nb, Udp(p, p.GetValue(b)!, s, 1)))], s, ct);
            }, defaultRounds: 4));

        // ---- DNS
        var server = new Option<string>("--server") { Description = "resolver host:port (port defaults to 53)", Required = true };
        var qname = new Option<string>("--qname") { Description = "names to query, comma-separated, used round-robin", DefaultValueFactory = _ => "web" };
        var qtype = new Option<string>("--qtype") { Description = "query type: A, AAAA, SRV, TXT, ANY or a number", DefaultValueFactory = _ => "A" };
        var okRcodes = new Option<string>("--ok-rcodes") { Description = "rcodes counted as success, comma-separated", DefaultValueFactory = _ => "NOERROR" };
        DnsQueryStep Dns(ParseResult p, string srv, Settings s, int i) => new(
            Steps.Net.ParseEndPoint(srv, 53),
            p.GetValue(qname)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            p.GetValue(okRcodes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(DnsWire.ParseRcode).ToHashSet(),
            QType(p.GetValue(qtype)!), SocketOptions(s, i));
        root.Subcommands.Add(Scenario("dns", "DNS queries over UDP against one resolver (status = rcode)",
            c => { c.Options.Add(server); c.Options.Add(qname); c.Options.Add(qtype); c.Options.Add(okRcodes); c.Options.Add(name); },
            (p, s, ct) =>
            {
                var n = p.GetValue(name)!;
                return Runner.ExecuteAsync("dns", $"DNS {p.GetValue(qtype)} {p.GetValue(qname)} @ {p.GetValue(server)}", [new Variant(n, new ScenarioDefinition(n, Dns(p, p.GetValue(server)!, s, 0)))], s, ct);
            }));
        root.Subcommands.Add(Scenario("dns-compare", "DNS queries against two resolvers in interleaved rounds; ratio last",
            c => { c.Options.Add(a); c.Options.Add(b); c.Options.Add(names); c.Options.Add(qname); c.Options.Add(qtype); c.Options.Add(okRcodes); },
            (p, s, ct) =>
            {
                var (na, nb) = Names(p.GetValue(names)!);
                return Runner.ExecuteAsync("dns-compare", $"DNS {p.GetValue(qtype)} {p.GetValue(qname)}, {na} vs {nb}",
                    [new Variant(na, new ScenarioDefinition(na, Dns(p, p.GetValue(a)!, s, 0))), new Variant(nb, new ScenarioDefinition(nb, Dns(p, p.GetValue(b)!, s, 1)))], s, ct);
            }, defaultRounds: 4));

        // ---- lab scenarios: each takes /tmp/mesh-lab.lock, brings up the lab it needs and tears it down
        var noWrk = new Option<bool>("--no-wrk") { Description = "skip the wrk run of the same paths" };
        var replicas = new Option<int>("--replicas") { Description = "replicas of web in the lab (1: mesh and direct end at the same server)", DefaultValueFactory = _ => 1 };
        var directTask = new Option<string>("--direct-task") { Description = "the task whose ingress IP is the direct baseline", DefaultValueFactory = _ => "web.1" };
        root.Subcommands.Add(Scenario("mesh-vs-direct", "lab: HTTP through node 3's published port (overlay crossed) vs straight to a task's IP over the same overlay; keep-alive and new connections; wrk beside; ratio last",
            c => { c.Options.Add(noWrk); c.Options.Add(directTask); c.Options.Add(replicas); },
            (p, s, ct) => Lab.MeshVsDirect.RunAsync(new Lab.MeshVsDirect.Options(s, !p.GetValue(noWrk), p.GetValue(directTask)!, Math.Max(1, p.GetValue(replicas))), ct), defaultRounds: 4));

        root.Subcommands.Add(Scenario("l7", "lab: HTTP through Mesh's YARP entry vs nginx vs haproxy (both in node 3's ingress sandbox) to the same 3 tasks, wrk keep-alive and new connections, interleaved rounds; ratios vs nginx and haproxy",
            _ => { },
            (p, s, ct) => Lab.L7Proxies.RunAsync(new Lab.L7Proxies.Options(s), ct), defaultRounds: 3));

        var sizes = new Option<string>("--sizes") { Description = "service counts, comma-separated (smoke: 100)", DefaultValueFactory = _ => "100,1000,10000" };
        var tasksPer = new Option<int>("--tasks") { Description = "tasks per service", DefaultValueFactory = _ => 10 };
        root.Subcommands.Add(Scenario("scale", "control-plane programming time for N services x 10 tasks: the daemon's nft + iptables planners (cold, one change) vs a full iptables-restore rewrite; memory of the desired state",
            c => { c.Options.Add(sizes); c.Options.Add(tasksPer); },
            (p, s, ct) =>
            {
                var list = s.Smoke ? [100] : p.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToList();
                return Lab.ScaleScenario.RunAsync(list, Math.Max(1, p.GetValue(tasksPer)), s, ct);
            }));

        var fpSizes = new Option<string>("--sizes") { Description = "service counts, comma-separated; the first is the baseline of the ratios (smoke: 10,100)", DefaultValueFactory = _ => "10,10000" };
        var noNaive = new Option<bool>("--no-iptables") { Description = "skip the naive iptables layout's lanes (the reference)" };
        root.Subcommands.Add(Scenario("first-packet", "first-packet cost: new connections/s (wrk, Connection: close) through the daemon's sandbox table at N services, the target last, interleaved rounds; ratio vs the smallest size; the naive iptables layout beside",
            c => { c.Options.Add(fpSizes); c.Options.Add(tasksPer); c.Options.Add(noNaive); },
            (p, s, ct) =>
            {
                var list = s.Smoke ? [10, 100] : p.GetValue(fpSizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToList();
                return Lab.FirstPacketScenario.RunAsync(new Lab.FirstPacketScenario.Options(list, Math.Max(1, p.GetValue(tasksPer)), !p.GetValue(noNaive), s), ct);
            }, defaultRounds: 5));

        var nlSizes = new Option<string>("--sizes") { Description = "service counts, comma-separated (smoke: 100)", DefaultValueFactory = _ => "1000,10000" };
        root.Subcommands.Add(Scenario("nft-netlink", "nf_tables through the netlink library vs the nft process, same objects: the sandbox table cold for N services x 10 tasks, one element added, the read-back; ratios",
            c => { c.Options.Add(nlSizes); c.Options.Add(tasksPer); },
            (p, s, ct) =>
            {
                var list = s.Smoke ? [100] : p.GetValue(nlSizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToList();
                return Lab.NfTablesNetlinkScenario.RunAsync(list, Math.Max(1, p.GetValue(tasksPer)), s, ct);
            }));

        var remoteServices = new Option<int>("--services") { Description = "remote-state: services (smoke: 100)", DefaultValueFactory = _ => 10_000 };
        var remoteTasks = new Option<int>("--tasks") { Description = "remote-state: tasks per service", DefaultValueFactory = _ => 5 };
        root.Subcommands.Add(Scenario("remote-state", "a joined daemon's fetch of the holder's state at N services x T tasks (no lab): cold (every object decoded) vs the same state again vs one task replaced; objects kept by reference",
            c => { c.Options.Add(remoteServices); c.Options.Add(remoteTasks); },
            (p, s, ct) => Lab.RemoteStateScenario.RunAsync(s.Smoke ? 100 : p.GetValue(remoteServices), Math.Max(1, p.GetValue(remoteTasks)), s, ct), defaultRounds: 5));

        var planServices = new Option<int>("--services") { Description = "task-plans: services, each with a VIP on one user network (smoke: 100)", DefaultValueFactory = _ => 10_000 };
        var planTasks = new Option<int>("--tasks") { Description = "task-plans: tasks per service", DefaultValueFactory = _ => 2 };
        var planLocal = new Option<int>("--local") { Description = "task-plans: local tasks with a namespace (smoke: 10)", DefaultValueFactory = _ => 50 };
        root.Subcommands.Add(Scenario("task-plans", "the task loop's planning (no lab): every local task's namespace with N services on one user network, both dataplanes, against one task's VIPs planned alone",
            c => { c.Options.Add(planServices); c.Options.Add(planTasks); c.Options.Add(planLocal); },
            (p, s, ct) => Lab.TaskPlansScenario.RunAsync(s.Smoke ? 100 : p.GetValue(planServices), Math.Max(1, p.GetValue(planTasks)), s.Smoke ? 10 : Math.Max(1, p.GetValue(planLocal)), s, ct), defaultRounds: 5));

        var drain = new Option<string>("--drain") { Description = "churn: time between deregistering a task and stopping it", DefaultValueFactory = _ => "2s" };
        var keepAlive = new Option<bool>("--keep-alive") { Description = "churn: keep-alive connections instead of a new connection per request" };
        var runtime = new Option<string>("--runtime") { Description = "churn: netns (mesh lab serve in a namespace, registered once it answers) or podman (containers through mesh-cni, routed once their port answers)", DefaultValueFactory = _ => Mesh.Ingress.Lab.LabPlan.NetnsRuntime };
        runtime.AcceptOnlyFromAmong(Mesh.Ingress.Lab.LabPlan.NetnsRuntime, Mesh.Ingress.Lab.LabPlan.PodmanRuntime);
        root.Subcommands.Add(Scenario("churn", "lab: rolling replacement of every task of web under constant open-loop load through node 3; failed requests last (target 0)",
            c => { c.Options.Add(drain); c.Options.Add(keepAlive); c.Options.Add(runtime); },
            (p, s, ct) =>
            {
                // the load must outlast three replacements: at least 30 s (smoke: 16 s)
                s = s with { Duration = s.Smoke ? TimeSpan.FromSeconds(16) : TimeSpan.FromTicks(Math.Max(s.Duration.Ticks, TimeSpan.FromSeconds(30).Ticks)) };
                var d = Durations.Parse(p.GetValue(drain)!);
                return Lab.Churn.RunAsync(new Lab.Churn.Options(s, s.Smoke && d > TimeSpan.FromMilliseconds(500) ? TimeSpan.FromMilliseconds(500) : d, p.GetValue(keepAlive), p.GetValue(runtime)!), ct);
            }));

        var querier = new Option<string>("--querier") { Description = "dns: the task whose namespace sends the queries", DefaultValueFactory = _ => "web.1" };
        var noDnsperf = new Option<bool>("--no-dnsperf") { Description = "dns-lab: skip the dnsperf phase" };
        var dnsperfRate = new Option<int>("--dnsperf-rate") { Description = "dns-lab: the fixed queries/s of dnsperf's latency run (default 10000; smoke 2000)" };
        root.Subcommands.Add(Scenario("dns-lab", "lab: the embedded resolver (127.0.0.11 in a task) vs dnsmasq with the same records, same namespace, interleaved, with our runner then dnsperf; ratios last",
            c => { c.Options.Add(querier); c.Options.Add(noDnsperf); c.Options.Add(dnsperfRate); },
            (p, s, ct) => Lab.DnsScenario.RunAsync(s, p.GetValue(querier)!, ct, !p.GetValue(noDnsperf), p.GetValue(dnsperfRate)), defaultRounds: 4));

        var embeddedAt = new Option<string>("--embedded") { Description = "dns-bench: where the embedded resolver listens (loopback address:port)", DefaultValueFactory = _ => "127.0.53.1:53" };
        var dnsmasqAt = new Option<string>("--dnsmasq") { Description = "dns-bench: where dnsmasq listens", DefaultValueFactory = _ => "127.0.53.2:53" };
        var serverEnv = new Option<string?>("--server-env") { Description = "dns-bench: environment of the resolver's process, comma-separated NAME=VALUE (e.g. DOTNET_gcServer=1)" };
        var metricsExporters = new Option<string>("--metrics") { Description = "dns-bench: how the resolver exports the \"Mesh\" meter at /metrics: otel (the daemon's: OpenTelemetry's Prometheus exporter) or none; comma-separated for one resolver process each, measured in the same run", DefaultValueFactory = _ => "otel" };
        root.Subcommands.Add(Scenario("dns-bench", "no lab: the embedded resolver (a child process hosted as the daemon hosts it) vs dnsmasq with the same records on loopback, dnsperf interleaved (throughput at 100 outstanding, exact percentiles at a fixed rate), with the resolver process's GC/CPU/allocation per query; ratios",
            c => { c.Options.Add(dnsperfRate); c.Options.Add(embeddedAt); c.Options.Add(dnsmasqAt); c.Options.Add(serverEnv); c.Options.Add(metricsExporters); },
            (p, s, ct) => Lab.DnsBench.RunAsync(new Lab.DnsBench.Options(s, Steps.Net.ParseEndPoint(p.GetValue(embeddedAt)!, 53), Steps.Net.ParseEndPoint(p.GetValue(dnsmasqAt)!, 53),
                p.GetValue(dnsperfRate) is > 0 and var r ? r : s.Smoke ? 2000 : 10000,
                p.GetValue(metricsExporters)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                (p.GetValue(serverEnv) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), s.Smoke ? 20 : 500), ct), defaultRounds: 4));
        var serveUdp = new Option<string>("--udp") { Description = "dns-serve: loopback address:port", Required = true };
        var dnsServe = new Command("dns-serve", "dns-bench's resolver process: the embedded resolver on --udp (and TCP on the same port); 'stats' on stdin prints its runtime counters") { Hidden = true };
        dnsServe.Options.Add(serveUdp);
        dnsServe.Options.Add(metricsExporters);
        dnsServe.SetAction((p, ct) => DnsBenchServer.RunAsync(Steps.Net.ParseEndPoint(p.GetValue(serveUdp)!, 53), p.GetValue(metricsExporters)!, ct));
        root.Subcommands.Add(dnsServe);

        var cycles = new Option<int>("--cycles") { Description = "convergence: add + remove cycles per store (smoke: 3)", DefaultValueFactory = _ => 30 };
        var stores = new Option<string>("--stores") { Description = "convergence: the lab stores to compare, in order (ratio: second/first)", DefaultValueFactory = _ => "embedded,etcd" };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "convergence: the etcd lab's lease TTL in seconds", DefaultValueFactory = _ => 3 };
        var poll = new Option<string>("--poll") { Description = "convergence: the probes' polling interval", DefaultValueFactory = _ => "10ms" };
        var reuse = new Option<bool>("--reuse-addresses") { Description = "convergence: let a cycle's task take the address the previous (removed) one had" };
        var kernelMacs = new Option<bool>("--kernel-macs") { Description = "convergence: keep the kernel's random MAC on a task's legs instead of Docker's MAC-from-IP" };
        var appliedPoll = new Option<string>("--applied-poll") { Description = "convergence: how often each daemon's GET /v1/info is asked whether it applied the change (0: never; each request costs the daemon CPU, so not every --poll)", DefaultValueFactory = _ => "50ms" };
        root.Subcommands.Add(Scenario("convergence", "lab: time from a task add/remove through node 1's API until every node routes to it (or no longer) and DNS includes it (or no longer); p50/p99 per store, embedded vs etcd; ratio last",
            c => { c.Options.Add(cycles); c.Options.Add(stores); c.Options.Add(leaseTtl); c.Options.Add(poll); c.Options.Add(reuse); c.Options.Add(kernelMacs); c.Options.Add(appliedPoll); },
            (p, s, ct) => Lab.Convergence.RunAsync(new Lab.Convergence.Options(s, s.Smoke ? Math.Min(3, p.GetValue(cycles)) : Math.Max(1, p.GetValue(cycles)),
                p.GetValue(stores)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), Math.Max(1, p.GetValue(leaseTtl)),
                Durations.Parse(p.GetValue(poll)!), TimeSpan.FromSeconds(15), p.GetValue(reuse), p.GetValue(kernelMacs), Durations.Parse(p.GetValue(appliedPoll)!)), ct)));

        var chaosStores = new Option<string>("--stores") { Description = "chaos: the lab stores, in order (etcd runs with 3 members; smoke: embedded)", DefaultValueFactory = _ => "embedded,etcd" };
        var chaosLease = new Option<int>("--lease-ttl") { Description = "chaos: the etcd lab's lease TTL in seconds (the partition lasts 2x this + 5 s + the request timeout)", DefaultValueFactory = _ => 5 };
        var chaosDown = new Option<string>("--down") { Description = "chaos: how long a killed daemon or etcd member stays down before mesh lab up brings it back", DefaultValueFactory = _ => "2s" };
        var lossWindow = new Option<string>("--loss-window") { Description = "chaos: how long the underlay loss lasts", DefaultValueFactory = _ => "20s" };
        root.Subcommands.Add(Scenario("chaos", "lab: open-loop load through every node's published port while faults are injected one at a time (daemon SIGKILL + restart, etcd member kill, underlay loss, partition longer than the lease, store holder kill during writes); failed requests per fault",
            c => { c.Options.Add(chaosStores); c.Options.Add(chaosLease); c.Options.Add(chaosDown); c.Options.Add(lossWindow); },
            (p, s, ct) =>
            {
                var list = s.Smoke ? ["embedded"] : p.GetValue(chaosStores)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                foreach (var st in list)
                    if (st is not ("embedded" or "etcd")) throw new FormatException($"--stores: '{st}' is not embedded or etcd");
                var down = Durations.Parse(p.GetValue(chaosDown)!);
                return Lab.Chaos.RunAsync(new Lab.Chaos.Options(s, list, Math.Clamp(p.GetValue(chaosLease), 2, 60),
                    s.Smoke && down > TimeSpan.FromSeconds(1) ? TimeSpan.FromSeconds(1) : down, Durations.Parse(p.GetValue(lossWindow)!)), ct);
            }));

        // ---- smoke: every scenario against in-process loopback responders
        root.Subcommands.Add(Scenario("smoke", "CI smoke run: starts loopback HTTP/UDP/DNS responders and runs every scenario against them in seconds",
            c => { c.Options.Add(wrk); },
            (p, s, ct) => Runner.SmokeAsync(s.AsSmoke() with { Wrk = p.GetValue(wrk) }, ct)));

        // ---- serve: the loopback responders as a standalone process
        var httpAt = new Option<string?>("--http") { Description = "HTTP responder address:port" };
        var udpAt = new Option<string?>("--udp") { Description = "UDP echo address:port" };
        var dnsAt = new Option<string?>("--dns") { Description = "DNS responder address:port" };
        var serve = new Command("serve", "run the tiny loopback responders (HTTP 200 \"ok\", UDP echo, DNS A 10.0.0.1) until Ctrl+C");
        serve.Options.Add(httpAt);
        serve.Options.Add(udpAt);
        serve.Options.Add(dnsAt);
        serve.SetAction(async (p, ct) =>
        {
            var disposables = new List<IAsyncDisposable>();
            if (p.GetValue(httpAt) is { } h) { var ep = Steps.Net.ParseEndPoint(h); var srv = new TinyHttpServer(ep.Address, ep.Port); disposables.Add(srv); Console.Error.WriteLine($"http on {srv.Url}"); }
            if (p.GetValue(udpAt) is { } u) { var ep = Steps.Net.ParseEndPoint(u); var srv = new UdpEchoServer(ep.Address, ep.Port); disposables.Add(srv); Console.Error.WriteLine($"udp echo on {srv.EndPoint}"); }
            if (p.GetValue(dnsAt) is { } d) { var ep = Steps.Net.ParseEndPoint(d, 53); var srv = TinyDnsResponder.Start(ep.Address, ep.Port); disposables.Add(srv); Console.Error.WriteLine($"dns on {srv.EndPoint}"); }
            if (disposables.Count == 0) { Console.Error.WriteLine("nothing to serve: give --http, --udp and/or --dns"); return 1; }
            try { await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            foreach (var x in disposables) await x.DisposeAsync().ConfigureAwait(false);
            return 0;
        });
        root.Subcommands.Add(serve);
        return root;
    }

    internal static (string, string) Names(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2) throw new FormatException($"--names needs exactly two names, got '{text}'");
        if (parts[0] == parts[1]) throw new FormatException("--names must differ");
        return (parts[0], parts[1]);
    }

    internal static ushort QType(string text) => text.ToUpperInvariant() switch
    {
        "A" => 1, "NS" => 2, "CNAME" => 5, "SOA" => 6, "PTR" => 12, "MX" => 15, "TXT" => 16, "AAAA" => 28, "SRV" => 33, "ANY" => 255,
        var n when ushort.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out var v) => v,
        _ => throw new FormatException($"unknown query type '{text}'"),
    };

    internal static SocketStepOptions SocketOptions(Settings s, int variant) => new() { Bind = s.BindFor(variant), Timeout = s.Timeout };

    internal static Variant HttpVariant(string name, Uri url, bool newConnection, Settings s, int index) =>
        new(name, new ScenarioDefinition(name, new HttpGetStep(url, s.Connections, newConnection, SocketOptions(s, index)))) { WrkUrl = url };
}
