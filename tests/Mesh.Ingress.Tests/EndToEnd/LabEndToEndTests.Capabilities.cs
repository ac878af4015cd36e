using System.Globalization;
using Mesh.Ingress.Lab;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// packaging/mesh.service runs the daemon as root with only CAP_NET_ADMIN and CAP_SYS_ADMIN (its bounding set) and
/// no_new_privs. Here node 2's daemon is restarted exactly so (setpriv), and the lab must still work through it:
/// it converges, the published port answers through node 2, and a task of node 2 can be removed and added back
/// (which makes it rewrite the sandbox's nftables table and enter the task's namespace). `lab up` then restarts it
/// as it was.
/// </summary>
public sealed partial class LabEndToEndTests
{
    /// <summary>The unit's CapabilityBoundingSet, as setpriv spells it, and the kernel's bits for it (CAP_NET_ADMIN 12, CAP_SYS_ADMIN 21).</summary>
    private const string UnitCapabilities = "net_admin,sys_admin";
    private const ulong UnitCapabilityBits = (1UL << 12) | (1UL << 21);

    [LabFact]
    public async Task T8g_a_daemon_with_only_the_units_capabilities_converges_serves_and_handles_task_rm_and_add()
    {
        var unit = await File.ReadAllLinesAsync(Path.Combine(Checkout.Root, "packaging", "mesh.service"));
        Assert.Contains("CapabilityBoundingSet=CAP_NET_ADMIN CAP_SYS_ADMIN", unit); // what this test grants is what the unit grants

        const string node = "mesh-n2";
        var original = await DaemonOfAsync(node);
        var argv = (await File.ReadAllTextAsync($"/proc/{original}/cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("daemon", argv);
        try
        {
            await StopAsync(original);
            MeshExecutable.StartDetachedIn(node, "setpriv",
                [$"--bounding-set=-all,+{UnitCapabilities.Replace(",", ",+", StringComparison.Ordinal)}", "--inh-caps=-all", "--no-new-privs", "--", .. argv]);
            var reduced = await DaemonOfAsync(node);
            var status = await File.ReadAllLinesAsync($"/proc/{reduced}/status");
            Assert.Equal(UnitCapabilityBits, Capabilities(status, "CapEff:"));
            Assert.Equal(UnitCapabilityBits, Capabilities(status, "CapBnd:"));
            Assert.Contains(status, l => l.StartsWith("NoNewPrivs:", StringComparison.Ordinal) && l.EndsWith('1'));

            // Converged: it applied the cluster's revision and has nothing to complain about.
            var revision = (await LabStateAsync()).Revision;
            await EventuallyAsync(async () => Assert.Equal((revision, (string?)null), await AppliedAsync(node)), attempts: 300);
            Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.12", 12)).Distinct().Order());

            // Its own task out and back in, through its own API.
            var ip = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.2").Addresses["ingress"];
            var rm = await Shell.MeshApiAsync(node, "task", "rm", "web.2");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            await EventuallyAsync(async () => Assert.Equal(["web.1", "web.3"], (await Shell.CurlTasksAsync("198.18.0.12", 12)).Distinct().Order()), attempts: 50);
            var add = await Shell.MeshApiAsync(node, "task", "add", "web.2", "--service", "web", "--node", node, "--netns", "/var/run/netns/mesh-web.2", "--ip", $"ingress={ip}");
            Assert.True(add.ExitCode == 0, add.Stderr);
            await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.12", 12)).Distinct().Order()), attempts: 50);
            await EventuallyAsync(async () => Assert.Equal(3, (await DigAsync("mesh-web.2", "tasks.web")).Count), attempts: 50); // its DNS listener, opened inside the task's namespace
            var after = await AppliedAsync(node);
            Assert.Null(after.LastError);
        }
        finally
        {
            // Back as the lab runs it: whatever runs on node 2 goes, lab up starts its daemon again.
            if (await Shell.RunAsync("ip", "netns", "pids", node) is { ExitCode: 0 } pids)
            {
                foreach (var pid in pids.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    await StopAsync(pid);
                }
            }

            var up = await Shell.MeshAsync(lab.UpArguments);
            Assert.True(up.ExitCode == 0, up.Stderr);
        }

        var restored = await DaemonOfAsync(node);
        Assert.NotEqual(UnitCapabilityBits, Capabilities(await File.ReadAllLinesAsync($"/proc/{restored}/status"), "CapEff:"));
    }

    private static async Task<string> DaemonOfAsync(string node)
    {
        // The new daemon's pid is first setsid, sh and setpriv, which exec each other with full capabilities before the
        // daemon runs: wait until the process is the daemon itself (reading its status earlier saw all capabilities).
        string? pid = null;
        await EventuallyAsync(async () =>
        {
            pid = Assert.Single((await Shell.CheckedAsync("ip", "netns", "pids", node)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
            var argv = (await File.ReadAllTextAsync($"/proc/{pid}/cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(argv.Length > 1 && Path.GetFileName(argv[0]) is not ("setsid" or "sh" or "setpriv") && argv.Contains("daemon"), $"pid {pid} is still '{string.Join(' ', argv)}'");
        }, attempts: 50);
        return pid!;
    }

    private static async Task StopAsync(string pid)
    {
        await Shell.RunAsync("kill", "-TERM", pid);
        for (var i = 0; i < 200 && Directory.Exists($"/proc/{pid}"); i++)
        {
            await Task.Delay(100);
        }

        await Shell.RunAsync("kill", "-KILL", pid); // fails harmlessly when it is gone
    }

    private static async Task<(long Revision, string? LastError)> AppliedAsync(string node)
    {
        using var http = Mesh.Ingress.Cli.ApiClientFactory.Create($"unix:///run/mesh/lab/{node}.sock", TimeSpan.FromSeconds(5));
        using var json = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri("/v1/info", UriKind.Relative)));
        var root = json.RootElement;
        return (root.GetProperty("appliedRevision").GetInt64(), root.TryGetProperty("lastError", out var e) ? e.GetString() : null);
    }

    private static ulong Capabilities(string[] status, string field) =>
        ulong.Parse(status.Single(l => l.StartsWith(field, StringComparison.Ordinal))[field.Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

}
