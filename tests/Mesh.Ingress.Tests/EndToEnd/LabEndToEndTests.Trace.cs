using System.Text.Json;
using Mesh.Discovery.Store;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary><c>mesh trace</c> against the live lab: what it says a new connection would do is what curl then sees.</summary>
public sealed partial class LabEndToEndTests
{
    private static async Task<TraceResult> TraceAsync(string node, string target)
    {
        var run = await Shell.MeshAsync("trace", "--node", node, "tcp", target, "--from", "198.18.0.100", "--json");
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Stderr}");
        return JsonSerializer.Deserialize<TraceResult>(run.Stdout, MeshJson.Options)!;
    }

    private static string[] CandidateTasks(TraceResult trace) =>
        [.. trace.Backends!.Candidates.Select(c => c.Task!).Order(StringComparer.Ordinal)];

    [LabFact]
    public async Task T8c_a_trace_through_each_node_names_the_tasks_curl_then_reaches_and_each_tasks_accepting_rule()
    {
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            var address = LabFixture.NodeAddresses[i - 1];
            var trace = await TraceAsync($"mesh-n{i}", $"{address}:8080");

            Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
            Assert.Equal($"mesh-n{i}", trace.Node);
            Assert.Equal("-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.18.0.2:8080", trace.Steps[1].Rule);
            Assert.Equal("web", trace.Backends!.Service);
            Assert.Equal(AllTasks, CandidateTasks(trace));
            foreach (var candidate in trace.Backends.Candidates)
            {
                // The far side, read in the task's own namespace by the daemon of its node (followed by the CLI in the lab).
                var accept = Assert.Single(candidate.TaskSide!);
                Assert.Equal($"-d {candidate.Address}/32 -p tcp -m tcp --dport 80 -j ACCEPT", accept.Rule);
                Assert.Equal($"task {candidate.Task} on {candidate.Node}", accept.Namespace);
            }

            Assert.Equal(CandidateTasks(trace), (await Shell.CurlTasksAsync(address, 12)).Distinct().Order(StringComparer.Ordinal));
        }
    }

    [LabFact]
    public async Task T8c_a_removed_task_leaves_the_trace_and_curl_and_both_see_it_back()
    {
        var web2 = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.2");
        Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n1", "task", "rm", "web.2")).ExitCode);
        try
        {
            await EventuallyAsync(async () => Assert.Equal(["web.1", "web.3"], CandidateTasks(await TraceAsync("mesh-n3", "198.18.0.13:8080"))));
            Assert.Equal(["web.1", "web.3"], (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order(StringComparer.Ordinal));
        }
        finally
        {
            string[] again = ["task", "add", "web.2", "--service", "web", "--node", web2.Node, "--netns", web2.NetnsPath!,
                .. web2.Addresses.SelectMany(a => new[] { "--ip", $"{a.Key}={a.Value}" }), .. web2.ResolvConfPath is { } rc ? ["--resolv-conf", rc] : Array.Empty<string>()];
            var add = await Shell.MeshApiAsync("mesh-n1", again);
            Assert.True(add.ExitCode == 0, add.Stderr);
        }

        await EventuallyAsync(async () => Assert.Equal(AllTasks, CandidateTasks(await TraceAsync("mesh-n3", "198.18.0.13:8080"))));
        await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order(StringComparer.Ordinal)));
    }

    [LabFact]
    public async Task T8c_a_port_nobody_publishes_is_refused_by_the_trace_and_by_curl_and_bad_usage_is_named()
    {
        var trace = await TraceAsync("mesh-n3", "198.18.0.13:9999");
        Assert.Equal(TraceVerdict.Refused, trace.Verdict);
        Assert.Contains("not published", trace.Reason, StringComparison.Ordinal);
        Assert.Null(trace.Backends);
        var curl = await Shell.RunAsync("ip", "netns", "exec", "mesh-client", "curl", "-sS", "-m", "3", "http://198.18.0.13:9999/");
        Assert.Equal(7, curl.ExitCode); // couldn't connect: refused, not timed out (28)

        var text = await Shell.MeshAsync("trace", "--node", "mesh-n3", "tcp", "198.18.0.13:9999");
        Assert.Contains("verdict: refused", text.Stdout, StringComparison.Ordinal);

        var badPort = await Shell.MeshAsync("trace", "--node", "mesh-n3", "tcp", "198.18.0.13:99999");
        Assert.Equal(2, badPort.ExitCode);
        Assert.Contains("address:port", badPort.Stderr, StringComparison.Ordinal);
        var wrongNode = await Shell.MeshAsync("trace", "--node", "mesh-n3", "tcp", "198.18.0.13:8080", "--api", "unix:///run/mesh/lab/mesh-n1.sock");
        Assert.Equal(1, wrongNode.ExitCode);
        Assert.Contains("is node 'mesh-n1', not 'mesh-n3'", wrongNode.Stderr, StringComparison.Ordinal);
    }
}
