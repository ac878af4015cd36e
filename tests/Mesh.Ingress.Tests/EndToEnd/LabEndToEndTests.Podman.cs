using System.Diagnostics;
using Mesh.Ingress.Cni;
using Mesh.Ingress.Lab.Podman;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// A real podman container on the lab's web (issue 10, parts 3 to 5 end to end): the image <c>mesh lab image</c>
/// builds, <c>mesh-cni</c> as <c>mesh cni install</c> writes it for node 3, podman started inside node 3's namespace
/// with the lab's private storage. One container, so the test stays short. Without podman it fails: it does not skip.
/// </summary>
public sealed partial class LabEndToEndTests
{
    private const string PodmanNode = "mesh-n3";
    private const string PodmanCniDir = LabPodman.Directory + "/cni-n3";
    private const string PodmanConf = LabPodman.Directory + "/containers.conf";

    /// <summary>podman with the lab's storage and containers.conf, in node 3's namespace (nsenter: see DEPENDENCIES.md).</summary>
    private static Task<Mesh.Ingress.Kernel.CommandResult> PodmanAsync(params string[] args) =>
        Shell.RunAsync("nsenter", [$"--net=/run/netns/{PodmanNode}", "--", "env", $"CONTAINERS_CONF={PodmanConf}", LabPodman.Executable, .. LabPodman.GlobalArguments, .. args]);

    private static async Task<string> PodmanCheckedAsync(params string[] args)
    {
        var run = await PodmanAsync(args);
        Assert.True(run.ExitCode == 0, $"podman {string.Join(' ', args)}: exit {run.ExitCode}: {run.Stderr}");
        return run.Stdout;
    }

    [LabFact]
    public async Task T8m_a_podman_container_on_mesh_web_is_a_task_reached_through_every_node_resolves_at_127_0_0_11_and_leaves_without_a_trace()
    {
        var image = await Shell.MeshAsync("lab", "image");
        Assert.True(image.ExitCode == 0, image.Stderr);
        Assert.StartsWith(TaskImage.Name + " sha256:", image.Stdout, StringComparison.Ordinal);

        var install = await Shell.MeshAsync("cni", "install", "--api", $"unix:///run/mesh/lab/{PodmanNode}.sock", "--bin-dir", $"{PodmanCniDir}/bin", "--conf-dir", $"{PodmanCniDir}/net.d");
        Assert.True(install.ExitCode == 0, install.Stderr);
        await File.WriteAllTextAsync(PodmanConf, LabPodman.ContainersConf($"{PodmanCniDir}/bin", $"{PodmanCniDir}/net.d"));

        const string name = "mesh-t8m";
        string[] others = ["web.1", "web.2", "web.3"];
        try
        {
            var id = (await PodmanCheckedAsync(
                "run", "-d", "--name", name, "--hostname", "web-podman", "--env", $"MESH_NODE={PodmanNode}", "--network", "mesh-web",
                "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", TaskImage.Name)).Trim();
            var sandbox = (await PodmanCheckedAsync("inspect", "--format", "{{.NetworkSettings.SandboxKey}}", name)).Trim();
            Assert.True(File.Exists(sandbox), sandbox);

            // A task of web on node 3, registered under podman's container id.
            var task = await TaskOfAsync(id);
            Assert.NotNull(task);
            Assert.Matches(@"^web\.\d+$", task.Name);
            Assert.Equal((PodmanNode, sandbox), (task.Node, task.NetnsPath));
            // Registered starting at CNI ADD; its node makes it running once its port accepts (TaskReadinessProber).
            var running = $@"(?m)^{System.Text.RegularExpressions.Regex.Escape(task.Name)}\s+web\s+{PodmanNode}\s+running";
            var ls = await Shell.MeshApiAsync("mesh-n1", "task", "ls", "--service", "web");
            for (var waited = 0; waited < 20_000 && !System.Text.RegularExpressions.Regex.IsMatch(ls.Stdout, running); waited += 200)
            {
                await Task.Delay(200);
                ls = await Shell.MeshApiAsync("mesh-n1", "task", "ls", "--service", "web");
            }

            Assert.Matches(running, ls.Stdout);

            // Through every node: the container among the lab's own tasks, answering on its ingress address.
            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () => Assert.Equal(["web-podman", .. others], (await Shell.CurlTasksAsync(node, 12)).Distinct().Order(StringComparer.Ordinal)), attempts: 30);
            }

            var answers = await Shell.CheckedAsync("ip", ["netns", "exec", "mesh-client", "curl", "-s", "-m", "3", "-H", "Connection: close", .. Enumerable.Repeat("http://198.18.0.11:8080/", 8)]);
            Assert.Contains($"web-podman {PodmanNode} {task.Addresses["ingress"]} peer=", answers, StringComparison.Ordinal);

            // DNS: podman writes the CNI result's dns.nameservers first into the container's resolv.conf.
            var resolv = await PodmanCheckedAsync("exec", name, "cat", "/etc/resolv.conf");
            Assert.Equal("nameserver 127.0.0.11", resolv.Split('\n').First(l => l.StartsWith("nameserver", StringComparison.Ordinal)));
            var vip = Assert.Single(await DigAsync("mesh-web.1", "web"));
            var lookup = await PodmanCheckedAsync("exec", name, "nslookup", "web");
            Assert.Contains("127.0.0.11:53", lookup, StringComparison.Ordinal);
            Assert.Contains($"Address: {vip}", lookup, StringComparison.Ordinal);
            Assert.Contains($"Address: {task.Addresses["appnet"]}", await PodmanCheckedAsync("exec", name, "nslookup", "tasks.web"), StringComparison.Ordinal);

            // Removed: out of every node's backends and DNS within a few seconds, and nothing left behind.
            var clock = Stopwatch.StartNew();
            await PodmanCheckedAsync("rm", "-f", name);
            foreach (var node in LabFixture.NodeAddresses)
            {
                await EventuallyAsync(async () => Assert.Equal(others, (await Shell.CurlTasksAsync(node, 9)).Distinct().Order(StringComparer.Ordinal)), attempts: 30);
            }

            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"routes of the removed container lasted {clock.Elapsed}");
            Assert.DoesNotContain(task.Addresses["appnet"], await DigAsync("mesh-web.1", "tasks.web"));
            Assert.Null(await TaskOfAsync(id));
            Assert.DoesNotContain(CniLeg.HostPrefix(id), await Shell.CheckedAsync("ip", "-n", PodmanNode, "-o", "link", "show"), StringComparison.Ordinal);
            Assert.False(File.Exists(sandbox), $"{sandbox} is left");
            Assert.DoesNotContain(id, await PodmanCheckedAsync("ps", "-a", "--no-trunc", "--format", "{{.ID}}"), StringComparison.Ordinal);
            Assert.False(Directory.Exists("/var/lib/cni/results") && Directory.EnumerateFiles("/var/lib/cni/results").Any(f => f.Contains(id, StringComparison.Ordinal)), "libcni's cached result is left");
        }
        finally
        {
            await PodmanAsync("rm", "-f", name);
        }
    }
}
