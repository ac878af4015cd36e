using System.Diagnostics;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Issue 12's "no processes": a task of another node leaving and coming back changes node 3's ingress sandbox and
/// its tasks' VIP tables, and nothing else on node 3, so its daemon must do all of it through netlink. The daemon is
/// traced with strace (every thread, execve only) while that happens, and every process it started is named.
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8x_a_remote_task_leaving_and_returning_starts_no_process_in_a_nodes_daemon()
    {
        const string node = "mesh-n3";
        var daemon = await DaemonOfAsync(node);
        var log = Path.Combine(Path.GetTempPath(), $"mesh-execve-{Guid.NewGuid():N}.log");
        var ip = (await LabStateAsync()).Tasks.Single(t => t.Name == "web.1").Addresses["ingress"];
        using var strace = Process.Start(new ProcessStartInfo("strace")
        {
            ArgumentList = { "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", log, "-p", daemon },
        })!;
        try
        {
            // strace says nothing once attached: wait until every thread of the daemon is traced (a TracerPid in its status).
            await EventuallyAsync(async () =>
            {
                foreach (var thread in Directory.GetDirectories($"/proc/{daemon}/task"))
                {
                    var tracer = (await File.ReadAllLinesAsync(Path.Combine(thread, "status"))).Single(l => l.StartsWith("TracerPid:", StringComparison.Ordinal));
                    Assert.NotEqual("0", tracer["TracerPid:".Length..].Trim());
                }
            }, attempts: 50);

            var rm = await Shell.MeshApiAsync("mesh-n1", "task", "rm", "web.1");
            Assert.True(rm.ExitCode == 0, rm.Stderr);
            await EventuallyAsync(async () => Assert.Equal(["web.2", "web.3"], (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order()), attempts: 50);
            var add = await Shell.MeshApiAsync("mesh-n1", "task", "add", "web.1", "--service", "web", "--node", "mesh-n1", "--netns", "/var/run/netns/mesh-web.1", "--ip", $"ingress={ip}");
            Assert.True(add.ExitCode == 0, add.Stderr);
            await EventuallyAsync(async () => Assert.Equal(AllTasks, (await Shell.CurlTasksAsync("198.18.0.13", 12)).Distinct().Order()), attempts: 50);
            var revision = (await LabStateAsync()).Revision;
            await EventuallyAsync(async () => Assert.Equal((revision, (string?)null), await AppliedAsync(node)), attempts: 100);
        }
        finally
        {
            await Shell.RunAsync("kill", "-INT", strace.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)); // strace detaches and exits
            await strace.WaitForExitAsync();
        }

        // A process is an execve that succeeded (the failed ones are the search along PATH).
        var started = (await File.ReadAllLinesAsync(log)).Where(l => l.Contains("execve(", StringComparison.Ordinal) && l.EndsWith("= 0", StringComparison.Ordinal)).ToList();
        File.Delete(log);
        Assert.True(started.Count == 0, $"node 3's daemon started {started.Count} processes:\n{string.Join('\n', started.Take(20))}");
    }
}
