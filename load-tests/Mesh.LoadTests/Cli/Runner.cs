using System.Globalization;
using Mesh.LoadTests.Core;
using Mesh.LoadTests.Reporting;
using Mesh.LoadTests.Servers;
using Mesh.LoadTests.Tools;

namespace Mesh.LoadTests.Cli;

/// <summary>Runs a scenario's variants, the optional wrk cross-check, and writes the reports.</summary>
public static class Runner
{
    public static async Task<int> ExecuteAsync(string scenario, string description, IReadOnlyList<Variant> variants, Settings s,
        CancellationToken ct, bool newConnection = false)
    {
        var (code, _) = await ExecuteWithReportAsync(scenario, description, variants, s, ct, newConnection).ConfigureAwait(false);
        return code;
    }

    public static async Task<(int Code, RunReport Report)> ExecuteWithReportAsync(string scenario, string description, IReadOnlyList<Variant> variants,
        Settings s, CancellationToken ct, bool newConnection = false)
    {
        var started = DateTimeOffset.UtcNow;
        var runner = new LoadRunner();
        var experiment = new Experiment(runner);
        var options = new ExperimentOptions
        {
            Simulation = s.Simulation,
            Rounds = s.Rounds,
            Warmup = s.Warmup,
            RoundWarmup = s.RoundWarmup,
            Pause = s.Pause,
            DrainTimeout = s.Timeout + TimeSpan.FromSeconds(2),
        };
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{scenario}: {string.Join(" vs ", variants.Select(v => $"{v.Name} ({v.Scenario.Target})"))}; {options.Simulation.Describe()}" +
            $"{(s.Rounds > 1 ? $", {s.Rounds} interleaved rounds" : "")}, warm-up {Durations.Format(s.Warmup)}{(s.Smoke ? " [smoke]" : "")}")).ConfigureAwait(false);

        IReadOnlyList<VariantOutcome> outcomes;
        try
        {
            var progress = ProgressLine.Start(runner, s.Quiet, s.ProgressInterval);
            try
            {
                outcomes = await experiment.RunAsync(variants, options, ct).ConfigureAwait(false);
            }
            finally
            {
                if (progress is not null) await progress.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            foreach (var v in variants) await v.Scenario.DisposeAsync().ConfigureAwait(false);
        }

        var settings = new Dictionary<string, string>
        {
            ["connections"] = s.Connections.ToString(CultureInfo.InvariantCulture),
            ["timeout"] = Durations.Format(s.Timeout),
        };
        if (s.Bind.Count > 0) settings["bind"] = string.Join(",", s.Bind);
        if (newConnection) settings["newConnection"] = "true";
        if (s.Smoke) settings["smoke"] = "true";
        var report = ReportBuilder.Build(scenario, description, outcomes, options, s.CoreBudget, started, settings,
            "mesh-loadtests " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)));
        if (ct.IsCancellationRequested) report.Warnings.Add("interrupted: the run was cancelled before it finished");

        if (s.Wrk && !ct.IsCancellationRequested)
            await CrossCheckWithWrkAsync(report, variants, s, newConnection, ct).ConfigureAwait(false);

        var markdown = MarkdownReport.Render(report);
        if (!s.NoReport)
        {
            var dir = s.Out ?? Path.Combine(DefaultResultsRoot(), $"{scenario}-{started:yyyyMMdd-HHmmss}");
            Directory.CreateDirectory(dir);
            await File.WriteAllTextAsync(Path.Combine(dir, "report.json"), ReportBuilder.ToJson(report), CancellationToken.None).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(dir, "report.md"), markdown, CancellationToken.None).ConfigureAwait(false);
            await File.WriteAllTextAsync(Path.Combine(dir, "report.html"), HtmlReport.Render(report), CancellationToken.None).ConfigureAwait(false);
            await Console.Error.WriteLineAsync($"reports: {Path.GetFullPath(dir)}/report.{{md,json,html}}").ConfigureAwait(false);
        }
        Console.Out.Write(markdown);

        int code = 0;
        if (report.Variants.Any(v => v.Ok == 0)) code = 3;
        else if (s.MaxErrorRate is { } max && report.Variants.Any(v => v.ErrorRate > max)) code = 2;
        if (ct.IsCancellationRequested) code = 130;
        return (code, report);
    }

    private static async Task CrossCheckWithWrkAsync(RunReport report, IReadOnlyList<Variant> variants, Settings s, bool newConnection, CancellationToken ct)
    {
        var http = variants.Where(v => v.WrkUrl is not null).ToList();
        if (http.Count == 0) return;
        var path = Wrk.Find();
        if (path is null)
        {
            report.Warnings.Add("wrk cross-check requested but wrk is not on PATH (apt-get install wrk)");
            return;
        }
        if (s.Bind.Count > 0)
            report.Warnings.Add("wrk cannot bind a source address: its runs use the default source of this network namespace");
        var duration = s.WrkDuration ?? s.Duration;
        // alternate like our own rounds: A B, then B A when there are two rounds' worth of time
        foreach (var v in http)
        {
            await Console.Error.WriteLineAsync($"wrk cross-check: {v.Name} ({v.WrkUrl}) for {Durations.Format(duration)}").ConfigureAwait(false);
            var args = Wrk.Arguments(v.WrkUrl!, s.Connections, duration, newConnection, s.Timeout);
            var w = await Wrk.RunAsync(path, v.Name, v.WrkUrl!, args, ct).ConfigureAwait(false);
            w.OursRps = report.Variants.FirstOrDefault(x => x.Name == v.Name)?.OkRps;
            report.Wrk.Add(w);
        }
    }

    /// <summary>Every scenario, briefly, against in-process loopback responders: proves the runner works end to end.</summary>
    public static async Task<int> SmokeAsync(Settings s, CancellationToken ct)
    {
        var root = s.Out ?? Path.Combine(DefaultResultsRoot(), $"smoke-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}");
        await using var http = new TinyHttpServer();
        await using var http2 = new TinyHttpServer();
        await using var udp = new UdpEchoServer();
        await using var dns = TinyDnsResponder.Start();
        await using var dns2 = TinyDnsResponder.Start();
        var results = new List<(string Name, int Code, RunReport Report)>();

        async Task Run(string name, string scenario, string description, Func<Settings, IReadOnlyList<Variant>> variants, Settings settings, bool newConnection = false)
        {
            var st = settings with { Out = Path.Combine(root, name) };
            var (code, report) = await ExecuteWithReportAsync(scenario, description, variants(st), st, ct, newConnection).ConfigureAwait(false);
            results.Add((name, code, report));
        }

        var compare = s with { Rounds = 2, Connections = 4 };
        await Run("http-compare", "http-compare", "smoke: keep-alive HTTP, two loopback servers",
            st => [CommandLine.HttpVariant("a", http.Url, false, st, 0), CommandLine.HttpVariant("b", http2.Url, false, st, 1)], compare).ConfigureAwait(false);
        await Run("http-compare-new-connection", "http-compare", "smoke: HTTP with a new connection per request",
            st => [CommandLine.HttpVariant("a", http.Url, true, st, 0), CommandLine.HttpVariant("b", http2.Url, true, st, 1)], compare, newConnection: true).ConfigureAwait(false);
        await Run("http-open-loop", "http", "smoke: open loop at 300/s",
            st => [CommandLine.HttpVariant("loopback", http.Url, false, st, 0)], s with { Rate = 300, Rounds = 1, Wrk = false }).ConfigureAwait(false);
        await Run("tcp", "tcp", "smoke: TCP connect/close",
            st => [new Variant("loopback", new ScenarioDefinition("loopback", new Steps.TcpConnectStep(http.EndPoint, true, CommandLine.SocketOptions(st, 0))))], s with { Rounds = 1, Connections = 4, Wrk = false }).ConfigureAwait(false);
        await Run("udp", "udp", "smoke: UDP echo",
            st => [new Variant("loopback", new ScenarioDefinition("loopback", new Steps.UdpStep(udp.EndPoint, "ping"u8.ToArray(), true, CommandLine.SocketOptions(st, 0))))], s with { Rounds = 1, Connections = 4, Wrk = false }).ConfigureAwait(false);
        await Run("dns-compare", "dns-compare", "smoke: DNS A queries, two loopback responders",
            st => [DnsVariant("a", dns.EndPoint, st, 0), DnsVariant("b", dns2.EndPoint, st, 1)], compare with { Wrk = false }).ConfigureAwait(false);

        await Console.Error.WriteLineAsync().ConfigureAwait(false);
        await Console.Error.WriteLineAsync("smoke summary:").ConfigureAwait(false);
        foreach (var (name, code, report) in results)
        {
            var figures = string.Join("; ", report.Variants.Select(v => string.Create(CultureInfo.InvariantCulture, $"{v.Name} {v.OkRps:0}/s p99 {v.Latency.P99Us:0} µs, {v.Failed} failed")));
            await Console.Error.WriteLineAsync($"  {(code == 0 ? "ok  " : $"FAIL({code})")} {name}: {figures}").ConfigureAwait(false);
        }
        return results.Any(r => r.Code != 0) ? 1 : 0;
    }

    /// <summary>load-tests/results when run from the repository root (git-ignored there), else ./loadtest-results.</summary>
    public static string DefaultResultsRoot() =>
        Directory.Exists(Path.Combine("load-tests", "Mesh.LoadTests")) ? Path.Combine("load-tests", "results") : "loadtest-results";

    private static Variant DnsVariant(string name, System.Net.IPEndPoint server, Settings s, int index) =>
        new(name, new ScenarioDefinition(name, new Steps.DnsQueryStep(server, ["web", "tasks.web"], new HashSet<int> { 0 }, Steps.DnsWire.TypeA, CommandLine.SocketOptions(s, index))));
}
