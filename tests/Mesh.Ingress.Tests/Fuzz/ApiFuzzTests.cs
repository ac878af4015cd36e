using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace Mesh.Ingress.Tests.Fuzz;

/// <summary>
/// Issue 9 part 9: random and mutated requests against a real <c>mesh daemon</c> over its unix socket, checking
/// after every request that the daemon is up, the answer well-formed and fast, the state changed only through a
/// 2xx and only in the object it named, and every object in the state valid.
/// MESH_FUZZ_REQUESTS (default 10000) and MESH_FUZZ_SEED (default: random, printed) make longer or repeat runs.
/// </summary>
public sealed class ApiFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Fuzzed_requests_never_crash_the_daemon_break_the_state_or_change_it_without_a_2xx()
    {
        var count = EnvInt("MESH_FUZZ_REQUESTS", 10_000);
        var seed = EnvInt("MESH_FUZZ_SEED", Random.Shared.Next());
        var summary = await new FuzzRun(seed, count).RunAsync();
        output.WriteLine(summary.Text);
        Assert.True(summary.Failure is null, summary.Text);

        // Not vacuous: the run must have created objects, or a daemon answering 400 to everything would pass.
        Assert.True(summary.Writes2xx >= count / 50, $"only {summary.Writes2xx} writes succeeded:\n{summary.Text}");
    }

    [Fact]
    public async Task The_oracle_catches_a_state_change_after_an_error()
    {
        // A test that can fail: a 400 whose state nonetheless changed must be reported, naming the object.
        var before = Snapshot.Parse("""{"revision":1,"networks":[{"name":"ingress","subnet":"10.255.0.0/16","vni":4096}],"nodes":[],"services":[],"tasks":[]}""");
        var after = Snapshot.Parse("""{"revision":2,"networks":[{"name":"ingress","subnet":"10.255.0.0/16","vni":4096}],"nodes":[],"services":[{"name":"web","firewallMark":256}],"tasks":[]}""");
        var verdict = FuzzOracle.Judge(new FuzzRequest("POST", "/v1/services", "application/json", [], "test"), new FuzzResponse(400, "application/json", """{"error":"x","field":"name"}""", TimeSpan.Zero), before, after);
        Assert.Contains("service 'web'", verdict, StringComparison.Ordinal);
        Assert.Contains("services[0].name", string.Join('\n', StateInvariants.Check(after.State with { Services = [after.State.Services[0] with { Name = "we\nb" }] })), StringComparison.Ordinal);
    }

    private static int EnvInt(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}

internal sealed record FuzzSummary(string Text, string? Failure, int Writes2xx);

/// <summary>One fuzz run: a daemon, a generator, the oracle; stops at the first failure, which it prints with the seed.</summary>
internal sealed class FuzzRun(int seed, int count)
{
    /// <summary>Liveness (<c>GET /v1/info</c>, the process) is checked after every this many requests.</summary>
    private const int BatchSize = 100;

    public async Task<FuzzSummary> RunAsync()
    {
        var total = Stopwatch.StartNew();
        await using var daemon = await FuzzDaemon.StartAsync(TimeSpan.FromSeconds(30));
        using var transport = new FuzzTransport(daemon.SocketPath);
        var generator = new RequestGenerator(new Random(seed));
        var statuses = new SortedDictionary<int, int>();
        var latencies = new List<double>(count);
        var writes2xx = 0;
        string? failure = null;
        var current = await ReadStateAsync(transport);
        var sent = 0;
        var recent = new Queue<string>(); // the requests before a failure: a late effect shows up after its cause
        for (; sent < count && failure is null; sent++)
        {
            var request = generator.Next(current.State);
            FuzzResponse response;
            try
            {
                response = await transport.SendAsync(request);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or System.Net.Sockets.SocketException)
            {
                failure = Failed(sent, request, null, $"no answer: {e.GetType().Name}: {e.Message}", daemon);
                break;
            }

            recent.Enqueue($"#{sent} {response.Status} {FuzzRequest.Show(request.Describe(), 300)}");
            if (recent.Count > 12)
            {
                recent.Dequeue();
            }

            latencies.Add(response.Elapsed.TotalMilliseconds);
            statuses[response.Status] = statuses.GetValueOrDefault(response.Status) + 1;
            Snapshot next;
            try
            {
                next = await ReadStateAsync(transport);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException or System.Text.Json.JsonException)
            {
                failure = Failed(sent, request, response, $"GET /v1/state failed after it: {e.GetType().Name}: {e.Message}", daemon);
                break;
            }

            var verdict = FuzzOracle.Judge(request, response, current, next);
            if (verdict is null && next.Json != current.Json)
            {
                writes2xx++;
                var problems = StateInvariants.Check(next.State);
                verdict = problems.Count == 0 ? null : "an invalid object got into the state:\n    " + string.Join("\n    ", problems.Take(10));
            }

            if (verdict is not null)
            {
                failure = Failed(sent, request, response, verdict, daemon);
                break;
            }

            current = next;
            if ((sent + 1) % BatchSize == 0)
            {
                failure = await AliveAsync(daemon, transport, sent, request);
            }
        }

        failure ??= await AliveAsync(daemon, transport, sent, null);
        latencies.Sort();
        var p99 = latencies.Count == 0 ? 0 : latencies[(int)Math.Min(latencies.Count - 1, Math.Ceiling(latencies.Count * 0.99) - 1)];
        var text = string.Create(CultureInfo.InvariantCulture,
            $"api-fuzz: seed {seed}, {sent} requests in {total.Elapsed.TotalSeconds:F1} s, mean {(latencies.Count == 0 ? 0 : latencies.Average()):F1} ms, p50 {Percentile(latencies, 0.5):F1} ms, p99 {p99:F1} ms, max {latencies.LastOrDefault():F1} ms; "
            + $"{writes2xx} state changes; final state {current.State.Networks.Count} networks, {current.State.Nodes.Count} nodes, {current.State.Services.Count} services, {current.State.Tasks.Count} tasks; "
            + $"statuses {string.Join(' ', statuses.Select(s => $"{s.Key}×{s.Value}"))}");
        return new FuzzSummary(failure is null ? text : text + "\n" + failure + "\n  requests before it:\n    " + string.Join("\n    ", recent), failure, writes2xx);
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[(int)(sorted.Count * p)];

    private static async Task<Snapshot> ReadStateAsync(FuzzTransport transport) =>
        Snapshot.Parse(await transport.Http.GetStringAsync(new Uri("/v1/state", UriKind.Relative)));

    /// <summary>After every batch: the process is running and answers <c>GET /v1/info</c>.</summary>
    private static async Task<string?> AliveAsync(FuzzDaemon daemon, FuzzTransport transport, int index, FuzzRequest? last)
    {
        try
        {
            using var info = await transport.Http.GetAsync(new Uri("/v1/info", UriKind.Relative));
            if (!daemon.HasExited && info.IsSuccessStatusCode)
            {
                return null;
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            // judged below
        }

        return $"the daemon is down after request #{index} (exited: {daemon.HasExited}); last request {last?.Describe()}\n--- daemon log:\n{daemon.Log()}";
    }

    private string Failed(int index, FuzzRequest request, FuzzResponse? response, string verdict, FuzzDaemon daemon) =>
        $"FAILED at request #{index}: {verdict}\n  request: {request.Describe()}\n"
        + (response is null ? "" : $"  answer: {response.Status} {response.ContentType} in {response.Elapsed.TotalMilliseconds:F0} ms: {FuzzRequest.Show(response.Body, 800)}\n")
        + $"  reproduce: MESH_FUZZ_SEED={seed} MESH_FUZZ_REQUESTS={index + 1} dotnet test tests/Mesh.Ingress.Tests -c Release --filter FullyQualifiedName~ApiFuzzTests\n"
        + (daemon.HasExited ? $"--- daemon exited ({daemon.ExitCode}); log:\n{daemon.Log()}" : "");
}
