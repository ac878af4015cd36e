using System.Diagnostics;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>The lab on a real etcd: tasks through any node's API, an etcd outage under load, node liveness by lease.</summary>
[TestCaseOrderer("Mesh.Ingress.Tests.EndToEnd.AlphabeticalOrderer", "Mesh.Ingress.Tests")]
[Trait("Category", "Lab")]
[Collection("Lab")]
public sealed class EtcdLabTests(EtcdLabFixture lab) : IClassFixture<EtcdLabFixture>
{
    private static readonly string[] AllTasks = ["web.1", "web.2", "web.3"];

    [EtcdLabFact]
    public async Task E1_a_task_added_through_node_1s_api_answers_through_node_3()
    {
        Assert.Contains("store etcd", (await Shell.MeshAsync("lab", "status")).Stdout, StringComparison.Ordinal);
        var web2 = (await LabEndToEndTests.LabStateAsync()).Tasks.Single(t => t.Name == "web.2");
        Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n3", "task", "rm", "web.2")).ExitCode);
        await LabEndToEndTests.EventuallyAsync(async () => Assert.DoesNotContain("web.2", await Shell.CurlTasksAsync("198.18.0.13", 9)));

        var add = await Shell.MeshApiAsync("mesh-n1", "task", "add", "web.2", "--service", "web", "--node", "mesh-n2", "--netns", web2.NetnsPath!,
            "--ip", $"ingress={web2.Addresses["ingress"]}", "--ip", $"appnet={web2.Addresses["appnet"]}", "--resolv-conf", web2.ResolvConfPath!);
        Assert.True(add.ExitCode == 0, add.Stderr);
        await LabEndToEndTests.EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order()));
    }

    [EtcdLabFact]
    public async Task E2_with_etcd_down_every_node_keeps_serving_writes_get_503_and_after_it_returns_changes_converge()
    {
        foreach (var pid in (await Shell.CheckedAsync("ip", "netns", "pids", "mesh-etcd1")).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            await Shell.CheckedAsync("kill", "-KILL", pid);
        }

        // Load through every node for longer than the lease TTL: not one request may fail.
        var outage = Stopwatch.StartNew();
        var (sent, answers) = (0, 0);
        while (outage.Elapsed < TimeSpan.FromSeconds(6))
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                var result = await Shell.RunAsync("ip", ["netns", "exec", "mesh-client", "curl", "-s", "-m", "2", "-H", "Connection: close", .. Enumerable.Repeat($"http://{node}:8080/", 5)]);
                sent += 5;
                answers += result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => l.StartsWith("web.", StringComparison.Ordinal));
            }
        }

        Assert.Equal(sent, answers);
        Assert.True(sent >= 30, $"only {sent} requests in the outage");

        var write = await Shell.MeshApiAsync("mesh-n2", "service", "create", "during-outage", "--publish", "9999:80");
        Assert.Equal(3, write.ExitCode);
        Assert.Contains("unavailable", write.Stderr, StringComparison.OrdinalIgnoreCase);
        var info = await Shell.RunAsync("curl", "-s", "--unix-socket", "/run/mesh/lab/mesh-n2.sock", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
            "-H", "Content-Type: application/json", "-d", "{\"name\":\"x\"}", "http://mesh/v1/services");
        Assert.Equal("503", info.Stdout);

        Assert.Equal(0, (await Shell.MeshAsync(lab.UpArguments)).ExitCode); // restarts etcd
        await LabEndToEndTests.EventuallyAsync(async () => Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n3", "task", "rm", "web.3")).ExitCode), attempts: 50);
        // Every node's watch stream broke with etcd and reconnects with backoff (up to 2 s) before the removal
        // reaches it: a loaded CI machine needed more than the default ~5 s; a watch that never recovers still fails.
        await LabEndToEndTests.EventuallyAsync(async () =>
        {
            foreach (var node in LabFixture.NodeAddresses)
            {
                Assert.Equal(["web.1", "web.2"], (await Shell.CurlTasksAsync(node, 9)).Distinct().Order());
            }
        }, attempts: 100);
        Assert.Equal(0, (await Shell.MeshAsync(lab.UpArguments)).ExitCode); // the lab's runtime puts web.3 back
        await LabEndToEndTests.EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order()));
    }

    [EtcdLabFact]
    public async Task E3_a_node_silent_longer_than_its_lease_loses_its_tasks_everywhere_and_gets_them_back()
    {
        var pid = (await Shell.CheckedAsync("ip", "netns", "pids", "mesh-n2")).Trim();
        await Shell.CheckedAsync("kill", "-KILL", pid);

        await LabEndToEndTests.EventuallyAsync(async () =>
        {
            Assert.Equal(["web.1", "web.3"], (await Shell.CurlTasksAsync("198.18.0.13", 9)).Distinct().Order());
            Assert.Equal(2, (await LabEndToEndTests.DigAsync("mesh-web.1", "tasks.web")).Count);
        }, attempts: 100);

        // Still listed, so an operator sees what is down (web.2 runs on mesh-n2).
        var ls = await Shell.MeshApiAsync("mesh-n1", "task", "ls");
        Assert.Contains(ls.Stdout.Split('\n'), l => l.StartsWith("web.2 ", StringComparison.Ordinal) && l.Contains(" node-down ", StringComparison.Ordinal));

        Assert.Equal(0, (await Shell.MeshAsync(lab.UpArguments)).ExitCode); // restarts the daemon of mesh-n2
        await LabEndToEndTests.EventuallyAsync(async () =>
        {
            Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order());
            Assert.Equal(3, (await LabEndToEndTests.DigAsync("mesh-web.1", "tasks.web")).Count);
        }, attempts: 100);
    }
}

/// <summary>A lab test that also needs Debian's etcd-server.</summary>
public sealed class EtcdLabFactAttribute : FactAttribute
{
    public EtcdLabFactAttribute()
    {
        Skip = new LabFactAttribute().Skip ?? (File.Exists("/usr/bin/etcd") ? null : "needs etcd: apt-get install etcd-server");
    }
}
