using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Creates sockets inside another network namespace (e.g. /run/netns/mesh-web.1 or /proc/PID/ns/net): a dedicated
/// thread setns()'s into the namespace, creates and binds the socket, then returns to its original namespace and
/// ends. A socket belongs to the namespace it was created in for its whole life, so it keeps serving that namespace
/// from any thread. Needs CAP_SYS_ADMIN (root).
/// </summary>
public static partial class NetworkNamespaceSockets
{
    private const int CloneNewNet = 0x40000000; // CLONE_NEWNET, <linux/sched.h>
    private const int ORdOnly = 0;
    private const int OCloExec = 0x80000;       // O_CLOEXEC (x86-64 / arm64 generic value)

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(int fd, int nstype);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    /// <summary>A UDP socket bound to <paramref name="bind"/> inside the namespace (port 0: the kernel picks one).</summary>
    public static Socket CreateUdp(string netnsPath, IPEndPoint bind) =>
        RunInNamespace(netnsPath, () =>
        {
            var s = new Socket(bind.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                s.Bind(bind);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });

    /// <summary>A listening TCP socket bound to <paramref name="bind"/> inside the namespace.</summary>
    public static Socket CreateTcpListener(string netnsPath, IPEndPoint bind, int backlog = 128) =>
        RunInNamespace(netnsPath, () =>
        {
            var s = new Socket(bind.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                s.Bind(bind);
                s.Listen(backlog);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });

    /// <summary>An unbound socket created inside the namespace.</summary>
    public static Socket CreateSocket(string netnsPath, AddressFamily family, SocketType type, ProtocolType protocol) =>
        RunInNamespace(netnsPath, () => new Socket(family, type, protocol));

    /// <summary>
    /// A <see cref="DnsSocketFactory"/> that creates upstream sockets inside the namespace (for
    /// <see cref="EmbeddedDnsServerOptions.UpstreamSocketFactory"/>, when upstreams must be reached from the task's
    /// network). Each socket costs a short-lived thread.
    /// </summary>
    public static DnsSocketFactory SocketFactoryFor(string netnsPath) => (f, t, p) => CreateSocket(netnsPath, f, t, p);

    /// <summary>Runs <paramref name="action"/> on a new thread that has entered the network namespace at <paramref name="netnsPath"/>.</summary>
    public static T RunInNamespace<T>(string netnsPath, Func<T> action)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentNullException.ThrowIfNull(action);
        T? result = default;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            int original = -1, target = -1;
            try
            {
                original = Open("/proc/thread-self/ns/net", ORdOnly | OCloExec);
                if (original < 0) throw Errno("open /proc/thread-self/ns/net");
                target = Open(netnsPath, ORdOnly | OCloExec);
                if (target < 0) throw Errno($"open {netnsPath}");
                if (SetNs(target, CloneNewNet) != 0) throw Errno($"setns {netnsPath}");
                try
                {
                    result = action();
                }
                finally
                {
                    // Back to where the thread started. If this failed the thread still ends right after,
                    // so nothing else can run in the wrong namespace.
                    SetNs(original, CloneNewNet);
                }
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                if (target >= 0) Close(target);
                if (original >= 0) Close(original);
            }
        })
        {
            IsBackground = true,
            Name = "mesh-netns",
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result!;
    }

    private static IOException Errno(string what)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
    }
}
