using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mesh.Discovery.Dns;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;

namespace Mesh.Discovery.Tests.Dns;

/// <summary>
/// Mesh has one way into a network namespace (<see cref="NetworkNamespace.Run{T}(string, Func{T})"/>, in Mesh.Ipvs);
/// both libraries use it: Mesh.Discovery for the embedded DNS listeners, Mesh.Ipvs for its netlink sockets. Each
/// socket made through it must be in a throw-away namespace's own socket tables (read there by `ip netns exec`, not by
/// our code) and not in the host's, and no thread of this process may be left inside that namespace.
/// </summary>
public class NetworkNamespaceEntryTests
{
    private const int NetlinkGeneric = 16; // NETLINK_GENERIC, <linux/netlink.h>

    [RequiresRootFact("ip")]
    public async Task Sockets_from_both_libraries_are_in_the_namespace_and_not_in_the_host()
    {
        string ns = $"mesh-nsentry-{Environment.ProcessId}";
        await Ip("netns", "add", ns);
        try
        {
            await Ip("-n", ns, "link", "set", "lo", "up");
            string path = $"/run/netns/{ns}";
            string callerBefore = NamespaceOfThisThread();

            // Mesh.Discovery: a listening TCP socket, as for a task's DNS.
            using var listener = NetworkNamespaceSockets.CreateTcpListener(path, new IPEndPoint(IPAddress.Loopback, 0));
            string listenerInode = SocketInode(listener);

            // Mesh.Ipvs: a netlink socket, as for IPVS/nf_tables in a node's namespace.
            using var netlink = NetlinkSocket.Open(NetlinkGeneric, path);

            var inside = await Run("ip", "netns", "exec", ns, "cat", "/proc/net/tcp", "/proc/net/netlink");
            string hostTcp = await File.ReadAllTextAsync("/proc/thread-self/net/tcp");
            string hostNetlink = await File.ReadAllTextAsync("/proc/thread-self/net/netlink");

            Assert.Contains(listenerInode, Inodes(inside));
            Assert.DoesNotContain(listenerInode, Inodes(hostTcp));

            // A fresh namespace holds only the sockets made in it: ours is the NETLINK_GENERIC one with its port id.
            var netlinkInode = NetlinkRows(inside).SingleOrDefault(r => r.Protocol == NetlinkGeneric && r.PortId == netlink.PortId).Inode;
            Assert.False(netlinkInode is null, $"no NETLINK_GENERIC socket with port id {netlink.PortId} inside {ns}:\n{inside}");
            Assert.DoesNotContain(netlinkInode, NetlinkRows(hostNetlink).Select(r => r.Inode));

            // The sockets keep working from this (host) thread: the netlink one answers a request.
            Assert.NotNull(GenericNetlink.TryResolve(netlink, "nlctrl"));

            // No thread moved: not the caller, and no thread of this process is left inside the namespace.
            Assert.Equal(callerBefore, NamespaceOfThisThread());
            string target = NetworkNamespace.Identify(path).ToString();
            var stuck = Directory.GetDirectories("/proc/self/task")
                .Where(t => ReadLinkOrNull(Path.Combine(t, "ns/net")) == target)
                .Select(Path.GetFileName)
                .ToArray();
            Assert.True(stuck.Length == 0, $"threads {string.Join(", ", stuck)} are still in {ns} ({target})");
        }
        finally
        {
            await Ip("netns", "del", ns);
        }
    }

    [RequiresRootFact]
    public void Failing_to_enter_names_the_call_and_errno_and_leaves_no_thread_behind()
    {
        string callerBefore = NamespaceOfThisThread();
        var e = Assert.Throws<NetworkNamespaceException>(() => NetlinkSocket.Open(NetlinkGeneric, "/run/netns/does-not-exist-mesh"));
        Assert.Equal("open(/run/netns/does-not-exist-mesh)", e.Operation);
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("ENOENT, errno 2", e.Message);

        // A file that exists but is no namespace: setns refuses it (EINVAL), and says so.
        var notNamespace = Path.GetTempFileName();
        try
        {
            var s = Assert.Throws<NetworkNamespaceException>(() => NetworkNamespaceSockets.CreateUdp(notNamespace, new IPEndPoint(IPAddress.Loopback, 0)));
            Assert.Equal($"setns({notNamespace}, CLONE_NEWNET)", s.Operation);
            Assert.Equal(Errno.EINVAL, s.Errno);
        }
        finally
        {
            File.Delete(notNamespace);
        }

        Assert.Equal(callerBefore, NamespaceOfThisThread());
    }

    [Fact]
    public void Asynchronous_work_is_refused()
    {
        Func<Task> work = async () => await Task.Yield();
        // A statement lambda (an Action): Run throws synchronously, before any task exists.
        var e = Assert.Throws<ArgumentException>(() => { _ = NetworkNamespace.Run("/proc/self/ns/net", work); });
        Assert.Contains("synchronous", e.Message);
    }

    private static string NamespaceOfThisThread() => ReadLinkOrNull("/proc/thread-self/ns/net") ?? throw new InvalidOperationException("no /proc/thread-self/ns/net");

    private static string? ReadLinkOrNull(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null; // a thread that ended meanwhile
        }
    }

    /// <summary>The socket's inode number, as /proc/net/* print it (the link /proc/self/fd/N is "socket:[INODE]").</summary>
    private static string SocketInode(Socket socket)
    {
        var link = new FileInfo($"/proc/self/fd/{socket.SafeHandle.DangerousGetHandle().ToInt32().ToString(CultureInfo.InvariantCulture)}").LinkTarget!;
        Assert.StartsWith("socket:[", link);
        return link["socket:[".Length..^1];
    }

    /// <summary>Inode column of /proc/net/tcp rows ("sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...").</summary>
    private static IEnumerable<string> Inodes(string text) => text.Split('\n')
        .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        .Where(f => f.Length > 9 && f[0].EndsWith(':'))
        .Select(f => f[9]);

    /// <summary>Rows of /proc/net/netlink: "sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode".</summary>
    private static IEnumerable<(int Protocol, uint PortId, string? Inode)> NetlinkRows(string text) => text.Split('\n')
        .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        .Where(f => f.Length == 10 && f[0] != "sk" && int.TryParse(f[1], out _) && uint.TryParse(f[2], out _))
        .Select(f => (int.Parse(f[1], CultureInfo.InvariantCulture), uint.Parse(f[2], CultureInfo.InvariantCulture), (string?)f[9]));

    private static async Task<string> Run(string program, params string[] args)
    {
        var r = await DnsTestTools.RunAsync(program, args, TimeSpan.FromSeconds(10));
        Assert.True(r.ExitCode == 0, $"{program} {string.Join(' ', args)}: {r.Stderr}");
        return r.Stdout;
    }

    private static Task Ip(params string[] args) => Run("ip", args);
}
