using System.Diagnostics;
using System.Runtime.InteropServices;
using Mesh.Ingress.Cli;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Lab;
using Mesh.Ipvs;

namespace Mesh.Ingress.Tests.EndToEnd;

/// <summary>
/// Nothing left behind when a runtime deletes a task's namespace. A deleted namespace lives on while anything holds it
/// (seen: a killed task server's orphaned TCP connections with the nodes' L7 entries kept one for seconds to minutes),
/// and with it its legs on the node's bridges, which answer ARP for an address the store may give another task. The
/// test holds the namespace open itself (what those sockets did, but deterministic) and checks that the daemon deletes
/// the task's legs from its bridges while the namespace is still alive, that none of the daemon's sockets is in the
/// namespace once the task is gone, and that the namespace really disappears when the test lets go of it.
/// </summary>
public sealed partial class LabEndToEndTests
{
    [LabFact]
    public async Task T8z_a_deleted_task_namespace_loses_its_legs_at_once_and_no_daemon_socket_keeps_it()
    {
        const string service = "left";
        const string task = "left.1";
        const string node = "mesh-n2";
        const string netns = "mesh-left.1";
        const string witness = "wleft1";
        var netnsPath = NetworkNamespacePath.Named(netns).Path!;
        var legs = new[] { Discovery.Model.OverlayNetwork.IngressName, LabPlan.AppNetwork }.Select(n => LabCluster.HostLeg(task, n)).ToArray();
        var clock = Stopwatch.StartNew();
        var before = await AllRulesAsync();
        var pin = -1;
        try
        {
            var create = await Shell.MeshApiAsync("mesh-n1", "service", "create", service, "--publish", "8187:80", "--network", LabPlan.AppNetwork);
            Assert.True(create.ExitCode == 0, create.Stderr);
            await new LabCluster(new ProcessCommandRunner(), TextWriter.Null).StartTaskAsync(ApiClientFactory.Store(LabPlan.Api("mesh-n1")), task, 2, CancellationToken.None);
            pin = Open(netnsPath);
            var inode = NetworkNamespace.Identify(netnsPath).ToString();
            var daemon = DaemonPid(node);

            // A veth into the namespace on no bridge: the daemon leaves it alone, and it goes only when the namespace does.
            await Shell.CheckedAsync("ip", "-n", node, "link", "add", witness, "type", "veth", "peer", "name", "wit0", "netns", netns);
            foreach (var leg in legs)
            {
                Assert.True(await LinkExistsAsync(node, leg), $"{task}'s leg {leg} is not on {node}");
            }

            // The daemon's embedded DNS for the task listens inside the namespace (UDP and TCP): the probe sees them.
            await EventuallyAsync(() =>
            {
                var sockets = SocketsIn(daemon, inode);
                Assert.True(sockets >= 2, $"the daemon has {sockets} sockets in {netns}");
                return Task.CompletedTask;
            }, attempts: 50);

            // What a runtime does: deregister, end the processes, delete the namespace (not the legs). The test's fd keeps it alive.
            Assert.Equal(0, (await Shell.MeshApiAsync("mesh-n1", "task", "rm", task)).ExitCode);
            foreach (var pid in (await Shell.RunAsync("ip", "netns", "pids", netns)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                await Shell.RunAsync("kill", "-KILL", pid);
            }

            await Shell.CheckedAsync("ip", "netns", "del", netns);
            var deleted = clock.ElapsedMilliseconds;
            await EventuallyAsync(async () =>
            {
                foreach (var leg in legs)
                {
                    Assert.False(await LinkExistsAsync(node, leg), $"{leg} still on {node} after {clock.ElapsedMilliseconds - deleted} ms");
                }
            }, attempts: 30);
            var legsGone = clock.ElapsedMilliseconds - deleted;
            Assert.True(await LinkExistsAsync(node, witness), "the namespace died on its own: the daemon's removal of the legs was not what was tested");
            Assert.Equal(0, SocketsIn(daemon, inode));

            // Let go: the namespace disappears (its last veth with it), and no process has it any more.
            Close(pin);
            pin = -1;
            await EventuallyAsync(async () => Assert.False(await LinkExistsAsync(node, witness), $"{netns} still alive {clock.ElapsedMilliseconds - deleted} ms after its deletion"), attempts: 150);
            Assert.DoesNotContain(inode, NamespacesInUse());
            Console.WriteLine($"T8z leftovers: legs of {task} gone {legsGone} ms after ip netns del while the namespace was held; namespace gone {clock.ElapsedMilliseconds - deleted} ms after; daemon sockets in it 0");
        }
        finally
        {
            if (pin >= 0)
            {
                Close(pin);
            }

            await Shell.MeshApiAsync("mesh-n1", "service", "rm", service);
            await RemoveTaskNamespaceAsync(netns);
            await Shell.RunAsync("ip", "-n", node, "link", "del", witness);
        }

        await EventuallyAsync(async () => Assert.Equal(before, await AllRulesAsync()), attempts: 100);
        Console.WriteLine($"T8z leftovers: {clock.ElapsedMilliseconds} ms in all");
    }

    private static async Task<bool> LinkExistsAsync(string netns, string link) =>
        (await Shell.RunAsync("ip", "-n", netns, "link", "show", "dev", link)).ExitCode == 0;

    /// <summary>The daemon of a lab node: the process whose arguments are <c>daemon … --node NODE</c>.</summary>
    private static int DaemonPid(string node)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid))
            {
                string[] args;
                try
                {
                    args = File.ReadAllText($"{dir}/cmdline").Split('\0');
                }
                catch (IOException)
                {
                    continue;
                }

                var at = Array.IndexOf(args, "--node");
                if (args.Contains("daemon") && at >= 0 && at + 1 < args.Length && args[at + 1] == node)
                {
                    return pid;
                }
            }
        }

        throw new InvalidOperationException($"no daemon of {node} runs");
    }

    /// <summary>
    /// How many of the process's sockets belong to the network namespace <paramref name="inode"/>: each socket fd is
    /// copied out of the process (pidfd_getfd) and asked its namespace (SIOCGSKNS), so sockets in a namespace that no
    /// longer has a name are counted too, which no <c>ss</c> run inside a named namespace could.
    /// </summary>
    private static int SocketsIn(int pid, string inode)
    {
        var pidfd = checked((int)Syscall(SysPidfdOpen, pid, 0, 0));
        Assert.True(pidfd >= 0, $"pidfd_open({pid}) failed: errno {Marshal.GetLastPInvokeError()}");
        var count = 0;
        try
        {
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"))
            {
                if (new FileInfo(fd).LinkTarget is not { } target || !target.StartsWith("socket:", StringComparison.Ordinal)
                    || !int.TryParse(Path.GetFileName(fd), out var number))
                {
                    continue;
                }

                var copy = (int)Syscall(SysPidfdGetfd, pidfd, number, 0);
                if (copy < 0)
                {
                    continue; // closed since it was listed
                }

                try
                {
                    var ns = Ioctl(copy, SiocGskns, 0);
                    Assert.True(ns >= 0, $"SIOCGSKNS on the daemon's fd {number} failed: errno {Marshal.GetLastPInvokeError()}");
                    count += NetworkNamespace.Identify($"/proc/self/fd/{ns}").ToString() == inode ? 1 : 0;
                    Close(ns);
                }
                finally
                {
                    Close(copy);
                }
            }
        }
        finally
        {
            Close(pidfd);
        }

        return count;
    }

    /// <summary>Every network namespace a thread or an open fd of any process is in or holds (<c>net:[INODE]</c>).</summary>
    private static HashSet<string> NamespacesInUse()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                foreach (var thread in Directory.EnumerateDirectories($"{dir}/task"))
                {
                    seen.Add(NetworkNamespace.Identify($"{thread}/ns/net").ToString());
                }

                foreach (var fd in Directory.EnumerateFileSystemEntries($"{dir}/fd"))
                {
                    // An fd opened through a bind mount (/run/netns/NAME) reads as that path, not as net:[INODE].
                    if (new FileInfo(fd).LinkTarget is { } target
                        && (target.StartsWith("net:", StringComparison.Ordinal) || target.Contains("/netns/", StringComparison.Ordinal)))
                    {
                        seen.Add(NetworkNamespace.Identify(fd).ToString());
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }

        return seen;
    }

    private static int Open(string path)
    {
        var fd = OpenFile(path, 0x80000 /* O_RDONLY | O_CLOEXEC */);
        return fd >= 0 ? fd : throw new IOException($"open({path}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    private static void Close(int fd) => _ = CloseFile(fd);

    private const long SysPidfdOpen = 434;
    private const long SysPidfdGetfd = 438;

    /// <summary>&lt;linux/sockios.h&gt;: a socket's network namespace, as a new fd.</summary>
    private const ulong SiocGskns = 0x894C;

#pragma warning disable SYSLIB1054, CA5392 // three plain int calls in a test; no marshalling for a generator to do
    [DllImport("libc.so.6", EntryPoint = "syscall", SetLastError = true)]
    private static extern long Syscall(long number, long a, long b, long c);

    [DllImport("libc.so.6", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, ulong request, long argument);

    [DllImport("libc.so.6", EntryPoint = "open", SetLastError = true)]
    private static extern int OpenFile([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc.so.6", EntryPoint = "close", SetLastError = true)]
    private static extern int CloseFile(int fd);
#pragma warning restore SYSLIB1054, CA5392
}
