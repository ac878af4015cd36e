using System.Text.Json;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ingress.Trace;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Client addresses (issue 11 part 1), from mesh-client (198.18.0.100) to every node: <c>mode=host</c> answers only
/// on the node with a task and the task sees the client; <c>traffic=local</c> the same through the sandbox, refused by
/// the nodes without a task; the plain mesh still SNATs; the health port says 200/503 per node. The test makes its
/// two services and their one task each, and removes them: every node's rules are as before afterwards.
/// </summary>
public sealed partial class LabEndToEndTests
{
    private const string Client = "198.18.0.100";

    [LabFact]
    public async Task T8l_host_mode_and_local_traffic_keep_the_client_address_only_where_a_task_runs_and_the_health_port_says_so()
    {
        // hostweb.1 on node 1, localweb.1 on node 2: node 3 has neither.
        (string Service, string Publish, int Port, int Node)[] cases =
        [
            ("hostweb", "8091:80,mode=host", 8091, 1),
            ("localweb", "8092:80/tcp,traffic=local", 8092, 2),
        ];
        var before = await AllRulesAsync();
        try
        {
            foreach (var (service, publish, _, node) in cases)
            {
                var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", service, "--publish", publish);
                Assert.True(create.ExitCode == 0, create.Stderr);
                await new LabCluster(new ProcessCommandRunner(), TextWriter.Null)
                    .StartTaskAsync(ApiClientFactory.Store(LabPlan.Api("mesh-n1")), $"{service}.1", node, CancellationToken.None);
            }

            var ls = await Shell.MeshApiAsync("mesh-n2", "service", "ls");
            Assert.Contains("8091:80/tcp,mode=host", ls.Stdout, StringComparison.Ordinal);
            Assert.Contains("8092:80/tcp,traffic=local", ls.Stdout, StringComparison.Ordinal);
            var inspect = JsonDocument.Parse((await Shell.MeshApiAsync("mesh-n3", "service", "inspect", "hostweb")).Stdout).RootElement;
            Assert.Equal("host", inspect.GetProperty("service").GetProperty("ports")[0].GetProperty("mode").GetString());

            foreach (var (service, _, port, node) in cases)
            {
                for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
                {
                    var address = LabFixture.NodeAddresses[i - 1];
                    if (i == node)
                    {
                        // Every answer from its own task, with the client as the peer: no SNAT anywhere on the way. Soon
                        // after the task started (its reply route is retried within seconds, not at the 30 s resync).
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        await EventuallyAsync(async () =>
                        {
                            foreach (var answer in await GetManyAsync(address, port, 6))
                            {
                                Assert.StartsWith($"{service}.1 mesh-n{node} ", answer, StringComparison.Ordinal);
                                Assert.Contains($" peer={Client} ", answer, StringComparison.Ordinal);
                            }
                        }, attempts: 100);
                        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{service} answered the client through node {node} only after {clock.Elapsed}");
                        await EventuallyAsync(async () => Assert.Equal((200, 1), await HealthAsync(address, service)), attempts: 50);

                        // mesh trace, from the same node's kernel, says what curl saw: this task, and the client's address kept.
                        var trace = await TraceAsync($"mesh-n{i}", $"{address}:{port}");
                        Assert.Equal(TraceVerdict.Forwarded, trace.Verdict);
                        Assert.Equal([$"{service}.1"], CandidateTasks(trace));
                        Assert.Contains(port == 8091 ? "mode=host" : "traffic=local", trace.Reason, StringComparison.Ordinal);
                    }
                    else
                    {
                        // Refused at once (a reset: nothing listens), not a timeout, and not forwarded to another node.
                        await EventuallyAsync(async () => Assert.Equal(7, (await CurlAsync(address, port)).ExitCode), attempts: 50);
                        Assert.Equal((503, 0), await HealthAsync(address, service));
                        Assert.Equal(TraceVerdict.Refused, (await TraceAsync($"mesh-n{i}", $"{address}:{port}")).Verdict);
                    }
                }
            }

            // The routing mesh as it was: node 3 has no web task, and web.N sees its sandbox (the SNAT), not the client.
            var meshed = Assert.Single(await GetManyAsync("198.18.0.13", 8080, 1));
            Assert.DoesNotContain($"peer={Client}", meshed, StringComparison.Ordinal);
            Assert.Contains(" peer=10.255.", meshed, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var (service, _, _, _) in cases)
            {
                await Shell.MeshApiAsync("mesh-n1", "service", "rm", service);
                await RemoveTaskNamespaceAsync($"mesh-{service}.1");
            }
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        Assert.Equal(7, (await CurlAsync("198.18.0.11", 8091)).ExitCode);
    }

    private static async Task<CommandResult> CurlAsync(string address, int port, params string[] extra) =>
        await Shell.RunAsync("ip", ["netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-H", "Connection: close", .. extra, $"http://{address}:{port}/"]);

    /// <summary><paramref name="count"/> requests, each on a new connection; the answer lines.</summary>
    private static async Task<List<string>> GetManyAsync(string address, int port, int count)
    {
        var answers = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var curl = await CurlAsync(address, port);
            Assert.True(curl.ExitCode == 0, $"curl {address}:{port} exit {curl.ExitCode} {curl.Stderr}");
            answers.Add(curl.Stdout.Trim());
        }

        return answers;
    }

    /// <summary>The health port's status and local task count for one service on one node.</summary>
    private static async Task<(int Status, int LocalTasks)> HealthAsync(string address, string service)
    {
        var curl = await Shell.RunAsync("ip", "netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-w", "\n%{http_code}", $"http://{address}:10256/services/{service}");
        Assert.True(curl.ExitCode == 0, $"health port of {address}: curl exit {curl.ExitCode} {curl.Stderr}");
        var lines = curl.Stdout.Split('\n');
        return (int.Parse(lines[^1], System.Globalization.CultureInfo.InvariantCulture), JsonDocument.Parse(lines[0]).RootElement.GetProperty("localTasks").GetInt32());
    }

    private static async Task<string> AllRulesAsync()
    {
        var all = new List<string>();
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            all.Add(await Shell.MeshRulesAsync($"mesh-n{i}"));
        }

        return string.Join("\n----\n", all);
    }

    /// <summary>What a runtime does when a container is gone: its processes end and its namespace (with its legs) goes.</summary>
    private static async Task RemoveTaskNamespaceAsync(string netns)
    {
        if (await Shell.RunAsync("ip", "netns", "pids", netns) is { ExitCode: 0 } pids)
        {
            foreach (var pid in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                await Shell.RunAsync("kill", "-KILL", pid);
            }
        }

        await EventuallyAsync(async () => Assert.Equal("", (await Shell.RunAsync("ip", "netns", "pids", netns)).Stdout.Trim()), attempts: 50);

        // And its legs go, as a CNI DEL deletes them, even while something still holds the namespace: a leg left on a
        // node's bridge answers ARP for the task's old address, which a task on another node may have been given since
        // (seen: T8p's relay reset through a node whose bridge had learned pweb.1's MAC on such a leg).
        var task = netns["mesh-".Length..];
        for (var i = 1; i <= LabFixture.NodeAddresses.Length; i++)
        {
            foreach (var network in new[] { Discovery.Model.OverlayNetwork.IngressName, LabPlan.AppNetwork })
            {
                await Shell.RunAsync("ip", "-n", LabPlan.NodeName(i), "link", "del", LabCluster.HostLeg(task, network));
            }
        }

        await Shell.RunAsync("ip", "netns", "del", netns);
        if (Directory.Exists($"/etc/netns/{netns}"))
        {
            Directory.Delete($"/etc/netns/{netns}", recursive: true);
        }

        File.Delete($"{LabPlan.StateDirectory}/{netns["mesh-".Length..]}.log");
    }
}
