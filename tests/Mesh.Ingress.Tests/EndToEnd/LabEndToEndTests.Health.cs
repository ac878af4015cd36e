using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Health-checked backends (issue 11 part 4): a service "hc" with one task per node (hc.N on node N), published on
/// 8094 and routed as hc.test, checked on /healthz every second. The lab server's health switch makes one task fail;
/// from mesh-client, every node's L4 port and L7 entry stop sending it requests within two intervals, and send them
/// again once it is healthy; with every task failing, every node fails open (all tasks answer) and says so.
/// The test makes the service and its tasks and removes them: every node's rules are as before afterwards.
/// </summary>
public sealed partial class LabEndToEndTests
{
    private const int HealthIntervalMs = 1000;
    private const int HealthPort = 8094;
    private static readonly string[] HealthTasks = ["hc.1", "hc.2", "hc.3"];

    [LabFact]
    public async Task T8h_a_task_failing_its_health_path_gets_no_new_requests_from_any_node_within_two_intervals_and_comes_back_and_all_failing_fails_open()
    {
        var before = await AllRulesAsync();
        var clock = Stopwatch.StartNew();
        try
        {
            var create = await ShownAsync("mesh-n1", "service", "create", "hc", "--publish", $"{HealthPort}:80", "--route", "hc.test/=80",
                "--health-path", LabServer.HealthPath, "--health-interval", $"{HealthIntervalMs}ms", "--health-timeout", "500ms", "--health-unhealthy-threshold", "1");
            Assert.True(create.ExitCode == 0, create.Stderr);
            var bad = await ShownAsync("mesh-n1", "service", "create", "hc2", "--publish", "8095:80", "--health-path", "/x", "--health-interval", "100ms");
            Assert.Equal(2, bad.ExitCode);
            Assert.StartsWith("mesh: error: --health-interval 100 ms is outside", bad.Stderr, StringComparison.Ordinal);

            for (var i = 0; i < HealthTasks.Length; i++)
            {
                await new LabCluster(new ProcessCommandRunner(), TextWriter.Null)
                    .StartTaskAsync(ApiClientFactory.Store(LabPlan.Api("mesh-n1")), HealthTasks[i], i + 1, CancellationToken.None);
            }

            Console.WriteLine($"T8h: service and tasks up in {clock.ElapsedMilliseconds} ms");
            var inspect = JsonDocument.Parse((await Shell.MeshApiAsync("mesh-n2", "service", "inspect", "hc")).Stdout).RootElement;
            Assert.Equal(HealthIntervalMs, inspect.GetProperty("service").GetProperty("healthCheck").GetProperty("intervalMs").GetInt32());
            await EventuallyAsync(async () => Assert.Equal(HealthTasks, await AnsweringTasksAsync()), attempts: 100);
            await EventuallyAsync(async () => Assert.All(await HealthViewsAsync(), v => Assert.Equal("healthy healthy healthy", v)), attempts: 50);

            // One task fails its check: from the switch on, no node sends it anything after two intervals. Repeated
            // MESH_T8H_CYCLES times (default 1) for BENCHMARKS.md's figures: the last request each entry sent it.
            var cycles = int.TryParse(Environment.GetEnvironmentVariable("MESH_T8H_CYCLES"), CultureInfo.InvariantCulture, out var n) ? n : 1;
            var samples = new List<double>();
            for (var cycle = 0; cycle < cycles; cycle++)
            {
                await SetHealthAsync("hc.2", 503);
                var after = await RequestsFromEveryNodeAsync(TimeSpan.FromMilliseconds(2 * HealthIntervalMs + 1500));
                foreach (var (entry, answers) in after)
                {
                    samples.Add(answers.Where(a => a.Task == "hc.2").Select(a => a.At.TotalMilliseconds).DefaultIfEmpty(0).Max());
                    var late = answers.Where(a => a.At > TimeSpan.FromMilliseconds(2 * HealthIntervalMs)).ToList();
                    Assert.True(late.Count >= 5, $"{entry}: only {late.Count} answers after two intervals");
                    Assert.True(late.All(a => a.Task != "hc.2"), $"{entry}: hc.2 still answered at {string.Join(", ", late.Where(a => a.Task == "hc.2").Select(a => a.At.TotalMilliseconds))} ms");
                    Assert.Equal(["hc.1", "hc.3"], late.Select(a => a.Task).Distinct().Order());
                }

                // Each node's own view says so, through its API and mesh task ls.
                Assert.All(await HealthViewsAsync(), v => Assert.Equal("healthy unhealthy healthy", v));
                var ls = cycle == 0 ? await ShownAsync("mesh-n3", "task", "ls", "--service", "hc") : await Shell.MeshApiAsync("mesh-n3", "task", "ls", "--service", "hc");
                Assert.Contains(ls.Stdout.Split('\n'), l => l.StartsWith("hc.2", StringComparison.Ordinal) && l.TrimEnd().EndsWith("unhealthy@mesh-n3", StringComparison.Ordinal));
                if (cycle == 0)
                {
                    var curls = await CurlHttpAsync("198.18.0.13", "hc.test", "/", 4);
                    Console.WriteLine("T8h session (mesh-client): $ for i in 1 2 3 4; do curl -s -H 'Host: hc.test' http://198.18.0.13/; done\n" + string.Join('\n', curls));
                    Assert.DoesNotContain(curls, c => c.StartsWith("hc.2 ", StringComparison.Ordinal));
                }

                // Healthy again: back on every node (two good probes, one interval apart).
                await SetHealthAsync("hc.2", 200);
                var back = Stopwatch.StartNew();
                await EventuallyAsync(async () => Assert.Equal(HealthTasks, await AnsweringTasksAsync()), attempts: 60);
                Console.WriteLine($"T8h: hc.2 answered from every node again {back.ElapsedMilliseconds} ms after its check passed");
            }

            samples.Sort();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"T8h: last request to hc.2 after its check failed ({samples.Count} entry samples, interval {HealthIntervalMs} ms, threshold 1): p50 {samples[samples.Count / 2]:F0} ms, p99 {samples[(int)Math.Min(samples.Count - 1, Math.Ceiling(samples.Count * 0.99) - 1)]:F0} ms, max {samples[^1]:F0} ms; all: {string.Join(' ', samples.Select(x => x.ToString("F0", CultureInfo.InvariantCulture)))}"));

            // Every task failing: every node fails open (all answer), says so in service inspect, its metrics and its log.
            foreach (var task in HealthTasks)
            {
                await SetHealthAsync(task, 500);
            }

            await EventuallyAsync(async () => Assert.All(await HealthViewsAsync(), v => Assert.Equal("unhealthy unhealthy unhealthy", v)), attempts: 50);
            await EventuallyAsync(async () => Assert.Equal(HealthTasks, await AnsweringTasksAsync()), attempts: 30);
            await ShownAsync("mesh-n2", "service", "ls");
            for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
            {
                var health = JsonDocument.Parse((i == 2 ? await ShownAsync("mesh-n2", "service", "inspect", "hc") : await Shell.MeshApiAsync($"mesh-n{i}", "service", "inspect", "hc")).Stdout).RootElement.GetProperty("health");
                Assert.True(health.GetProperty("failOpen").GetBoolean());
                Assert.Equal($"mesh-n{i}", health.GetProperty("node").GetString());
                var metrics = await Shell.CheckedAsync("curl", "-s", "-m", "3", "--unix-socket", LabPlan.ApiSocket($"mesh-n{i}"), "http://mesh/metrics");
                Assert.Contains(metrics.Split('\n'), l => l.StartsWith("mesh_health_fail_open{", StringComparison.Ordinal) && l.Contains("service=\"hc\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
                Assert.Contains("Every task of hc is unhealthy on this node: failing open", await File.ReadAllTextAsync($"{LabPlan.StateDirectory}/mesh-n{i}.log"), StringComparison.Ordinal);
            }
        }
        finally
        {
            await Shell.MeshApiAsync("mesh-n1", "service", "rm", "hc");
            foreach (var task in HealthTasks)
            {
                await RemoveTaskNamespaceAsync($"mesh-{task}");
            }
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        Console.WriteLine($"T8h: {clock.ElapsedMilliseconds} ms in all");
    }

    /// <summary>A mesh command against a node's API, printed as a session (README "Health checks" is copied from it).</summary>
    private static async Task<CommandResult> ShownAsync(string node, params string[] args)
    {
        var result = await Shell.MeshApiAsync(node, args);
        Console.WriteLine($"T8h session ({node}): $ mesh {string.Join(' ', args)}\n{result.Stdout}{result.Stderr}" + (result.ExitCode == 0 ? "" : $"(exit {result.ExitCode})\n"));
        return result;
    }

    /// <summary>The lab server's health switch, from inside the task's namespace (it only listens to loopback).</summary>
    private static Task SetHealthAsync(string task, int status) =>
        Shell.CheckedAsync("ip", "netns", "exec", $"mesh-{task}", "curl", "-sf", "-m", "3", "-X", "POST", $"http://127.0.0.1/lab/health?status={status.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>Per node, its verdicts on hc.1-3 in order ("healthy unhealthy healthy"), from its own API.</summary>
    private static async Task<List<string>> HealthViewsAsync()
    {
        var views = new List<string>();
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            var json = await Shell.CheckedAsync("curl", "-s", "-m", "3", "--unix-socket", LabPlan.ApiSocket($"mesh-n{i}"), "http://mesh/v1/health");
            var tasks = JsonDocument.Parse(json).RootElement.GetProperty("tasks").EnumerateArray()
                .Where(t => t.GetProperty("service").GetString() == "hc")
                .ToDictionary(t => t.GetProperty("task").GetString()!, t => t.GetProperty("status").GetString()!);
            views.Add(string.Join(' ', HealthTasks.Select(t => tasks.GetValueOrDefault(t, "missing"))));
        }

        return views;
    }

    /// <summary>The tasks that answered 9 requests to each node's L4 port and L7 entry (all together, sorted).</summary>
    private static async Task<string[]> AnsweringTasksAsync()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var http = ClientHttp();
        foreach (var node in LabFixture.NodeAddresses)
        {
            for (var i = 0; i < 9; i++)
            {
                seen.Add(await GetTaskAsync(http, $"http://{node}:{HealthPort}/", null));
                seen.Add(await GetTaskAsync(http, $"http://{node}/", "hc.test"));
            }
        }

        return [.. seen.Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Requests, each on a new connection, to every node's L4 port and L7 entry at once for <paramref name="window"/>:
    /// per entry, which task answered and when (from the call).
    /// </summary>
    private static async Task<List<(string Entry, List<(TimeSpan At, string Task)> Answers)>> RequestsFromEveryNodeAsync(TimeSpan window)
    {
        var clock = Stopwatch.StartNew();
        using var http = ClientHttp();
        var entries = LabFixture.NodeAddresses.SelectMany(n => new[] { ($"{n}:{HealthPort}", $"http://{n}:{HealthPort}/", (string?)null), ($"{n} hc.test", $"http://{n}/", "hc.test") });
        var runs = entries.Select(async e =>
        {
            var answers = new List<(TimeSpan, string)>();
            while (clock.Elapsed < window)
            {
                var task = await GetTaskAsync(http, e.Item2, e.Item3);
                answers.Add((clock.Elapsed, task));
            }

            return (e.Item1, answers);
        }).ToList();
        return [.. await Task.WhenAll(runs)];
    }

    /// <summary>An HTTP client whose connections start in mesh-client (198.18.0.100), one per request.</summary>
    private static HttpClient ClientHttp() => new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.Zero,
        ConnectCallback = async (context, ct) =>
        {
            var socket = NetworkNamespace.Run("/var/run/netns/mesh-client", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            try
            {
                await socket.ConnectAsync(context.DnsEndPoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = TimeSpan.FromSeconds(3) };

    private static async Task<string> GetTaskAsync(HttpClient http, string url, string? host)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.ConnectionClose = true;
        if (host is not null)
        {
            request.Headers.Host = host;
        }

        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{url} ({host}): {(int)response.StatusCode} {body}");
        return body.Split(' ')[0];
    }
}
