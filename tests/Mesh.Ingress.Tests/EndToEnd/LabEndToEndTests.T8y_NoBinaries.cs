using System.Diagnostics;
using System.Globalization;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Issue 12 part 5: on the nftables dataplane the node's own NAT (<c>ip mesh-host</c>) and a task's ingress and DNS rules
/// (<c>ip mesh-task</c>) are written over netlink like the sandbox's table. A published port appearing and going (the
/// host's DNAT on every node) and a task of that node leaving and coming back (its namespace's rules) must start no process
/// in the daemon of a node running one of the tasks: it is traced with strace (every thread, execve only) while that happens, as in T8x.
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8y_a_published_port_and_a_local_task_changing_start_no_process_in_a_nodes_daemon()
    {
        // web.2's node (the lab's node 2): node 3 runs no task of its own.
        var local = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.2");
        var node = local.Node;
        var address = LabFixture.NodeAddresses[int.Parse(node["mesh-n".Length..], CultureInfo.InvariantCulture) - 1];
        var daemon = await DaemonOfAsync(node);
        var log = Path.Combine(Path.GetTempPath(), $"mesh-execve-{Guid.NewGuid():N}.log");
        using var strace = Process.Start(new ProcessStartInfo("strace")
        {
            ArgumentList = { "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", log, "-p", daemon },
        })!;
        var created = false;
        try
        {
            await EventuallyAsync(async () =>
            {
                foreach (var thread in Directory.GetDirectories($"/proc/{daemon}/task"))
                {
                    var tracer = (await File.ReadAllLinesAsync(Path.Combine(thread, "status"))).Single(l => l.StartsWith("TracerPid:", StringComparison.Ordinal));
                    Assert.NotEqual("0", tracer["TracerPid:".Length..].Trim());
                }
            }, attempts: 50);

            // A published port: the node's host table DNATs it into the sandbox, and stops when the service goes.
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", "portprobe", "--publish", "8099:80");
            Assert.True(create.ExitCode == 0, create.Stderr);
            created = true;
            await EventuallyAsync(async () => Assert.Contains("tcp dport 8099 dnat to 172.18.0.2:8099", await HostIngressChainAsync(node), StringComparison.Ordinal), attempts: 50);
            var rm = await Shell.MeshApiAsync("mesh-n1", "service", "rm", "portprobe");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            created = false;
            await EventuallyAsync(async () => Assert.DoesNotContain("8099", await HostIngressChainAsync(node), StringComparison.Ordinal), attempts: 50);

            // A local task leaving and coming back: its namespace's table is written again (after the daemon forgot it).
            var taskRm = await Shell.MeshApiAsync("mesh-n1", "task", "rm", local.Name);
            Assert.True(taskRm.ExitCode == 0, taskRm.Stderr);
            await EventuallyAsync(async () => Assert.DoesNotContain(local.Name, await Shell.CurlTasksAsync(address, 12)), attempts: 50);
            string[] again = ["task", "add", local.Name, "--service", "web", "--node", node, "--netns", local.NetnsPath!,
                .. local.Addresses.SelectMany(a => new[] { "--ip", $"{a.Key}={a.Value}" }), .. local.ResolvConfPath is { } rc ? ["--resolv-conf", rc] : Array.Empty<string>()];
            var add = await Shell.MeshApiAsync("mesh-n1", again);
            Assert.True(add.ExitCode == 0, add.Stderr);
            await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync(address, 12)).Distinct().Order()), attempts: 50);
            var revision = (await LabStateAsync()).Revision;
            await EventuallyAsync(async () => Assert.Equal((revision, (string?)null), await AppliedAsync(node)), attempts: 100);
        }
        finally
        {
            await Shell.RunAsync("kill", "-INT", strace.Id.ToString(CultureInfo.InvariantCulture)); // strace detaches and exits
            await strace.WaitForExitAsync();
            if (created)
            {
                await Shell.MeshApiAsync("mesh-n1", "service", "rm", "portprobe");
            }
        }

        // The task's namespace holds its table (its DNS too), and no iptables rule of Mesh's is anywhere on the node.
        var table = await Shell.CheckedAsync("ip", "netns", "exec", Path.GetFileName(local.NetnsPath!), "nft", "list", "table", "ip", "mesh-task");
        Assert.Contains($"ip daddr {local.Addresses["ingress"]} tcp dport 8080 dnat to {local.Addresses["ingress"]}:80", table, StringComparison.Ordinal);
        Assert.Contains("ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:", table, StringComparison.Ordinal);
        Assert.DoesNotContain("MESH", await Shell.CheckedAsync("ip", "netns", "exec", node, "iptables-save"), StringComparison.Ordinal);

        var started = (await File.ReadAllLinesAsync(log)).Where(l => l.Contains("execve(", StringComparison.Ordinal) && l.EndsWith("= 0", StringComparison.Ordinal)).ToList();
        File.Delete(log);
        Assert.True(started.Count == 0, $"{node}'s daemon started {started.Count} processes:\n{string.Join('\n', started.Take(20))}");
    }

    private static Task<string> HostIngressChainAsync(string node) =>
        Shell.CheckedAsync("ip", "netns", "exec", node, "nft", "list", "chain", "ip", "mesh-host", "ingress");
}
