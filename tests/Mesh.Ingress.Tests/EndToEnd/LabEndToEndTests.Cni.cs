using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Ingress.Cni;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// CNI conformance against the live lab: <c>mesh-cni</c> as <c>mesh cni install</c> writes it, driven as a runtime
/// drives it (CNI_* environment, the conflist's plugin configuration on stdin, run in the node's namespace), with a
/// container namespace made by <c>ip netns add</c>. Every test removes its container, task and links.
/// </summary>
public sealed partial class LabEndToEndTests
{
    private const string CniNode = "mesh-n1";

    private static readonly Lazy<Task<(string Plugin, string Config)>> CniInstall = new(InstallCniAsync);

    private static async Task<(string Plugin, string Config)> InstallCniAsync()
    {
        // Under the lab's state directory: 'lab down' removes it with everything else.
        var dir = $"{Mesh.Ingress.Lab.LabPlan.StateDirectory}/cni";
        var run = await Shell.MeshAsync("cni", "install", "--api", "unix:///run/mesh/lab/mesh-n1.sock", "--bin-dir", $"{dir}/bin", "--conf-dir", $"{dir}/net.d");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("network mesh-web", run.Stdout, StringComparison.Ordinal);

        // The native plugin (src/Mesh.Cni) is what a Release build installs and what these tests drive, not the script.
        Assert.Equal([0x7f, (byte)'E', (byte)'L', (byte)'F'], (await File.ReadAllBytesAsync($"{dir}/bin/mesh-cni")).Take(4));

        // What libcni hands each plugin of a list: the plugin's object plus the list's name and cniVersion.
        var list = JsonNode.Parse(await File.ReadAllTextAsync($"{dir}/net.d/mesh-web.conflist"))!;
        var plugin = list["plugins"]![0]!.DeepClone();
        plugin["name"] = list["name"]!.GetValue<string>();
        plugin["cniVersion"] = list["cniVersion"]!.GetValue<string>();
        return ($"{dir}/bin/mesh-cni", plugin.ToJsonString());
    }

    private sealed record CniRun(int ExitCode, JsonElement Json, string Stderr)
    {
        public int Code => Json.ValueKind == JsonValueKind.Object && Json.TryGetProperty("code", out var c) ? c.GetInt32() : 0;
    }

    private static async Task<CniRun> CniAsync(string command, string containerId, string? netns, string? config = null, string node = CniNode)
    {
        var (plugin, defaultConfig) = await CniInstall.Value;
        var info = new ProcessStartInfo("nsenter") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { $"--net=/run/netns/{node}", "--", plugin })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["CNI_COMMAND"] = command;
        info.Environment["CNI_CONTAINERID"] = containerId;
        info.Environment["CNI_IFNAME"] = "eth0";
        info.Environment["CNI_PATH"] = Path.GetDirectoryName(plugin);
        if (netns is not null)
        {
            info.Environment["CNI_NETNS"] = netns;
        }

        using var process = Process.Start(info)!;
        await process.StandardInput.WriteAsync(config ?? defaultConfig);
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var text = await stdout;
        return new CniRun(process.ExitCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone(), await stderr);
    }

    [LabFact]
    public async Task T8n_e_the_first_container_of_a_network_on_a_node_waits_for_the_bridge_the_daemon_makes_for_it()
    {
        // Node 3 runs no task on appnet, so its daemon carries no appnet bridge until a task of node 3 joins appnet:
        // this ADD's own registration. Without waiting for it, the leg had no bridge to join and ADD failed.
        const string node = "mesh-n3";
        var (_, mesh1) = await CniInstall.Value;
        var config = mesh1.Replace("mesh-n1.sock", $"{node}.sock", StringComparison.Ordinal);
        Assert.NotEqual(mesh1, config);
        async Task<int> AppnetBridgeAsync() => (await Shell.RunAsync("ip", "-n", node, "link", "show", "dev", "mesh-ov-appnet")).ExitCode;
        Assert.NotEqual(0, await AppnetBridgeAsync());

        var netns = await ContainerNetnsAsync("cni-first-n3");
        try
        {
            var add = await CniAsync("ADD", "first-on-n3", netns, config, node);
            Assert.True(add.ExitCode == 0, $"{add.Json} {add.Stderr}");
            Assert.Equal(0, await AppnetBridgeAsync());
            var ips = add.Json.GetProperty("ips").EnumerateArray().Select(i => i.GetProperty("address").GetString()!).ToList();
            Assert.Contains(ips, a => a.StartsWith("10.0.1.", StringComparison.Ordinal)); // an appnet leg, on the new bridge
        }
        finally
        {
            Assert.Equal(0, (await CniAsync("DEL", "first-on-n3", netns, config, node)).ExitCode);
            await Shell.RunAsync("ip", "netns", "del", "cni-first-n3");
        }

        // The last task of node 3 on appnet gone, the daemon stops carrying appnet there (the lab is as before).
        await EventuallyAsync(async () => Assert.NotEqual(0, await AppnetBridgeAsync()), attempts: 100);
    }

    private static async Task<string> ContainerNetnsAsync(string name)
    {
        await Shell.RunAsync("ip", "netns", "del", name);
        await Shell.CheckedAsync("ip", "netns", "add", name);
        return $"/run/netns/{name}";
    }

    private static async Task<IReadOnlyList<string>> NodeLinksAsync(string containerId)
    {
        var prefix = CniLeg.HostPrefix(containerId);
        var links = await Shell.CheckedAsync("ip", "-n", CniNode, "-o", "link", "show");
        return links.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(':')[1].Trim().Split('@')[0]).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
    }

    private static async Task<Mesh.Discovery.Model.ServiceTask?> TaskOfAsync(string containerId) =>
        (await LabStateAsync()).Tasks.SingleOrDefault(t => t.ContainerId == containerId);

    /// <summary>Whatever a test left: the task (through DEL), the links, the namespace.</summary>
    private static async Task CniCleanupAsync(string containerId, string netnsName)
    {
        await CniAsync("DEL", containerId, null);
        await Shell.RunAsync("ip", "netns", "del", netnsName);
        Assert.Null(await TaskOfAsync(containerId));
        Assert.Empty(await NodeLinksAsync(containerId));
    }

    [LabFact]
    public async Task T8n_add_attaches_a_container_as_a_task_on_every_network_repeated_add_is_idempotent_and_del_twice_succeeds()
    {
        const string id = "cnie2e0a";
        var netns = await ContainerNetnsAsync("mesh-cni-a");
        try
        {
            var add = await CniAsync("ADD", id, netns);
            Assert.True(add.ExitCode == 0, $"{add.Json} {add.Stderr}");
            var task = await TaskOfAsync(id);
            Assert.NotNull(task);
            Assert.Matches(@"^web\.\d+$", task.Name);
            Assert.Equal((CniNode, netns), (task.Node, task.NetnsPath));

            var ips = add.Json.GetProperty("ips").EnumerateArray().Select(i => i.GetProperty("address").GetString()!).ToArray();
            Assert.Equal([$"{task.Addresses["ingress"]}/16", $"{task.Addresses["appnet"]}/24"], ips);
            Assert.Equal(["127.0.0.11"], add.Json.GetProperty("dns").GetProperty("nameservers").EnumerateArray().Select(n => n.GetString()));
            var inside = await Shell.CheckedAsync("ip", "-n", "mesh-cni-a", "-o", "addr", "show", "dev", "eth1");
            Assert.Contains($"inet {task.Addresses["appnet"]}/24", inside, StringComparison.Ordinal);
            Assert.Contains(CniLeg.MacOf(task.Addresses["appnet"]), await Shell.CheckedAsync("ip", "-n", "mesh-cni-a", "-o", "link", "show", "dev", "eth1"), StringComparison.Ordinal);

            // The legs work: the container reaches a task on another node over the appnet overlay.
            var web2 = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.2");
            await EventuallyAsync(async () => Assert.StartsWith("web.2 ", (await Shell.RunAsync("ip", "netns", "exec", "mesh-cni-a", "curl", "-s", "-m", "2", $"http://{web2.Addresses["appnet"]}/")).Stdout, StringComparison.Ordinal), 30);

            var again = await CniAsync("ADD", id, netns);
            Assert.True(again.ExitCode == 0, again.Json.ToString());
            Assert.Equal(add.Json.ToString(), again.Json.ToString());
            Assert.Equal(task.Name, (await TaskOfAsync(id))!.Name);

            Assert.Equal(0, (await CniAsync("CHECK", id, netns)).ExitCode);

            Assert.Equal(0, (await CniAsync("DEL", id, netns)).ExitCode);
            Assert.Null(await TaskOfAsync(id));
            Assert.Empty(await NodeLinksAsync(id));
            Assert.Equal(0, (await CniAsync("DEL", id, netns)).ExitCode);
            Assert.Equal(3, (await CniAsync("CHECK", id, netns)).Code); // unknown container
        }
        finally
        {
            await CniCleanupAsync(id, "mesh-cni-a");
        }
    }

    [LabFact]
    public async Task T8n_del_with_the_namespace_already_gone_succeeds_and_removes_task_and_links()
    {
        const string id = "cnie2e0b";
        var netns = await ContainerNetnsAsync("mesh-cni-b");
        try
        {
            var add = await CniAsync("ADD", id, netns);
            Assert.True(add.ExitCode == 0, add.Json.ToString());
            await Shell.CheckedAsync("ip", "netns", "del", "mesh-cni-b");

            var del = await CniAsync("DEL", id, netns);
            Assert.True(del.ExitCode == 0, del.Json.ToString());
            Assert.Null(await TaskOfAsync(id));
            Assert.Empty(await NodeLinksAsync(id));
            Assert.Equal(0, (await CniAsync("DEL", id, null)).ExitCode); // and with no CNI_NETNS at all
        }
        finally
        {
            await CniCleanupAsync(id, "mesh-cni-b");
        }
    }

    [LabFact]
    public async Task T8n_check_after_a_leg_is_deleted_by_hand_fails_with_the_leg_code_naming_it()
    {
        const string id = "cnie2e0c";
        var netns = await ContainerNetnsAsync("mesh-cni-c");
        try
        {
            Assert.Equal(0, (await CniAsync("ADD", id, netns)).ExitCode);
            await Shell.CheckedAsync("ip", "-n", CniNode, "link", "del", CniLeg.HostPrefix(id) + "1");

            var check = await CniAsync("CHECK", id, netns);
            Assert.Equal((1, (int)CniErrorCode.LegMismatch), (check.ExitCode, check.Code));
            Assert.Contains(CniLeg.HostPrefix(id) + "1", check.Json.GetProperty("msg").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            await CniCleanupAsync(id, "mesh-cni-c");
        }
    }

    [LabFact]
    public async Task T8n_an_add_failing_halfway_leaves_no_task_and_no_link()
    {
        const string id = "cnie2e0d";
        var netns = await ContainerNetnsAsync("mesh-cni-d");
        // A real kernel failure on the second leg: its host-side name is taken, so 'ip link add' fails after the
        // registration and after the first leg's pair was created.
        var squatter = CniLeg.HostPrefix(id) + "1";
        try
        {
            await Shell.CheckedAsync("ip", "-n", CniNode, "link", "add", squatter, "type", "bridge");
            var tasksBefore = (await LabStateAsync()).Tasks.Select(t => t.Name).Order(StringComparer.Ordinal).ToArray();
            var add = await CniAsync("ADD", id, netns);
            Assert.Equal((1, (int)CniErrorCode.LinkFailure), (add.ExitCode, add.Code));

            Assert.Null(await TaskOfAsync(id));
            Assert.Equal(tasksBefore, (await LabStateAsync()).Tasks.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Equal([squatter], await NodeLinksAsync(id)); // only the squatter: no leg of ours
            Assert.DoesNotContain("eth0", await Shell.CheckedAsync("ip", "-n", "mesh-cni-d", "-o", "link", "show"), StringComparison.Ordinal);
        }
        finally
        {
            await Shell.RunAsync("ip", "-n", CniNode, "link", "del", squatter);
            await CniCleanupAsync(id, "mesh-cni-d");
        }
    }
}
