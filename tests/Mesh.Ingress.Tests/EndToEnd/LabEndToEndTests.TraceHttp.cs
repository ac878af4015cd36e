using System.Text.Json;
using Mesh.Discovery.Store;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// <c>mesh trace … http</c> against the live lab: the route, cluster and destinations the running L7 entry of each
/// node names are what curl with that Host then gets (web has <c>--route web.test/=80</c>).
/// </summary>
public sealed partial class LabEndToEndTests
{
    private static async Task<TraceResult> TraceHttpAsync(string node, string address, string host, string path)
    {
        var run = await Shell.MeshAsync("trace", "--node", node, "http", $"{address}:80", "--host", host, "--path", path, "--from", Client, "--json");
        Assert.True(run.ExitCode == 0, $"exit {run.ExitCode}: {run.Stderr}");
        return JsonSerializer.Deserialize<TraceResult>(run.Stdout, MeshJson.Options)!;
    }

    [LabFact]
    public async Task T8t_a_trace_of_host_web_test_through_every_node_names_the_route_and_the_tasks_curl_then_reaches()
    {
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            var address = LabFixture.NodeAddresses[i - 1];
            var trace = await TraceHttpAsync($"mesh-n{i}", address, "web.test", "/");

            Assert.True(trace.Verdict == TraceVerdict.Forwarded, trace.Reason);
            Assert.Equal(($"mesh-n{i}", "web:web.test/", "web:80", "RoundRobin"), (trace.Node, trace.Http!.Route, trace.Http.Cluster, trace.Http.LoadBalancing));
            // Port 80 is not published at L4: the host's nat returns, and the entry in the node's namespace takes it.
            Assert.Equal("-j RETURN", trace.Steps[1].Rule);
            Assert.Equal(["tcp/80", "routes", "cluster web:80"], trace.Steps.Where(s => s.Table == "L7 entry").Select(s => s.Chain));
            Assert.Equal(AllTasks, CandidateTasks(trace));
            foreach (var candidate in trace.Backends!.Candidates)
            {
                Assert.StartsWith("available", candidate.Health, StringComparison.Ordinal);
                // The far side: the task's own rule accepting the target port, read by the daemon of its node.
                Assert.Equal($"-d {candidate.Address}/32 -p tcp -m tcp --dport 80 -j ACCEPT", Assert.Single(candidate.TaskSide!).Rule);
            }

            var answers = await CurlHttpAsync(address, "web.test", "/", 12);
            Assert.Equal(CandidateTasks(trace), answers.Select(a => a.Split(' ')[0]).Distinct().Order(StringComparer.Ordinal));
        }

        var text = await Shell.MeshAsync("trace", "--node", "mesh-n3", "http", "198.18.0.13:80", "--host", "web.test");
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.Contains("verdict: forwarded — route web:web.test/ → cluster web:80", text.Stdout, StringComparison.Ordinal);
    }

    [LabFact]
    public async Task T8t_an_unknown_host_is_a_404_in_the_trace_and_for_curl_on_every_node()
    {
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            var address = LabFixture.NodeAddresses[i - 1];
            var trace = await TraceHttpAsync($"mesh-n{i}", address, "nope.test", "/");
            Assert.True(trace.Verdict == TraceVerdict.NotFound, trace.Reason);
            Assert.Contains("404", trace.Reason, StringComparison.Ordinal);
            Assert.Null(trace.Backends);
            Assert.Equal("404", await StatusAsync(address, "nope.test", "/"));
        }

        var bad = await Shell.MeshAsync("trace", "--node", "mesh-n3", "http", "198.18.0.13:80", "--host", "web.test", "--path", "x");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--path", bad.Stderr, StringComparison.Ordinal);
        var noHost = await Shell.MeshAsync("trace", "--node", "mesh-n3", "http", "198.18.0.13:80");
        Assert.Equal(2, noHost.ExitCode);
        Assert.Contains("--host", noHost.Stderr, StringComparison.Ordinal);
    }

    [LabFact]
    public async Task T8t_a_longer_prefix_of_another_service_wins_in_the_trace_as_for_curl_and_its_removal_restores_both()
    {
        // t8t has no task: its route answers 503, so curl tells which route took the request (web's answers 200).
        var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "t8t", "--route", "web.test/t8t=80");
        Assert.True(create.ExitCode == 0, create.Stderr);
        try
        {
            for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
            {
                var address = LabFixture.NodeAddresses[i - 1];
                TraceResult trace = null!;
                await EventuallyAsync(async () => Assert.Equal("t8t:web.test/t8t", (trace = await TraceHttpAsync($"mesh-n{i}", address, "web.test", "/t8t/x")).Http!.Route));
                Assert.True(trace.Verdict == TraceVerdict.Unavailable, trace.Reason);
                Assert.Contains("503", trace.Reason, StringComparison.Ordinal);
                Assert.Equal(["t8t:web.test/t8t", "web:web.test/"], trace.Http!.RoutesOfHost.Select(r => r.Split(':')[0] + ":" + r.Split(':')[1]));
                Assert.Equal("503", await StatusAsync(address, "web.test", "/t8t/x"));

                var shorter = await TraceHttpAsync($"mesh-n{i}", address, "web.test", "/t8tx");
                Assert.Equal((TraceVerdict.Forwarded, "web:web.test/"), (shorter.Verdict, shorter.Http!.Route));
                Assert.Equal("200", await StatusAsync(address, "web.test", "/t8tx"));
            }
        }
        finally
        {
            var rm = await Shell.MeshApiAsync("mesh-n1", "service", "rm", "t8t");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
        }

        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            var address = LabFixture.NodeAddresses[i - 1];
            await EventuallyAsync(async () => Assert.Equal("web:web.test/", (await TraceHttpAsync($"mesh-n{i}", address, "web.test", "/t8t/x")).Http!.Route));
            Assert.Equal("200", await StatusAsync(address, "web.test", "/t8t/x"));
        }
    }
}
