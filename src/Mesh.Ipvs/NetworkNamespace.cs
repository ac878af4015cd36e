using System.Runtime.ExceptionServices;
using Mesh.Ipvs.Netlink;

namespace Mesh.Ipvs;

/// <summary>
/// Runs code inside another network namespace without moving any existing thread: a dedicated thread does
/// setns(target) → work → setns(original) and then exits. Sockets created by the work stay bound to the target
/// namespace for their whole life (a socket's namespace is fixed when it is created), which is how the netns-aware
/// netlink handles and the daemon's in-namespace listeners are made.
/// </summary>
public static class NetworkNamespace
{
    /// <summary>Runs <paramref name="work"/> on a dedicated thread inside the network namespace at
    /// <paramref name="netnsPath"/> (e.g. /var/run/netns/foo or /proc/PID/ns/net) and returns its result.
    /// Exceptions thrown by the work are rethrown here with their original stack.</summary>
    public static T Run<T>(string netnsPath, Func<T> work)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentNullException.ThrowIfNull(work);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = RunHere(netnsPath, work);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns:" + netnsPath,
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    /// <summary>As <see cref="Run{T}(string, Func{T})"/> for work without a result.</summary>
    public static void Run(string netnsPath, Action work) => Run<bool>(netnsPath, () =>
    {
        work();
        return true;
    });

    /// <summary>
    /// Which network namespace the file at <paramref name="netnsPath"/> is: its nsfs device and inode, the identity
    /// the kernel itself uses (two spellings or bind mounts of one namespace give the same id). Refuses anything
    /// that is not a network namespace file: a regular file, a FIFO (opened non-blocking, so it cannot hang), another
    /// kind of namespace. Only <c>/proc/…</c> paths follow a final symlink (there <c>ns/net</c> is the kernel's magic
    /// link to the namespace); elsewhere a symlink is refused (O_NOFOLLOW), so a link planted under /run/netns cannot
    /// redirect the daemon. Throws <see cref="IOException"/> saying why (<see cref="FileNotFoundException"/> when absent).
    /// </summary>
    public static NetworkNamespaceId Identify(string netnsPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        var follow = netnsPath.StartsWith("/proc/", StringComparison.Ordinal);
        int fd = LibC.Open(netnsPath, LibC.O_RDONLY | LibC.O_CLOEXEC | LibC.O_NONBLOCK | (follow ? 0 : LibC.O_NOFOLLOW));
        if (fd < 0)
        {
            int errno = LibC.LastError;
            throw errno switch
            {
                Errno.ENOENT => new FileNotFoundException($"{netnsPath} does not exist", netnsPath),
                Errno.ELOOP => new IOException($"{netnsPath} is a symbolic link, not a network namespace"),
                _ => new IOException($"cannot open {netnsPath}: {Errno.Describe(errno)}"),
            };
        }

        try
        {
            int type = LibC.Ioctl(fd, LibC.NS_GET_NSTYPE);
            if (type < 0)
            {
                throw new IOException($"{netnsPath} is not a namespace file");
            }

            if (type != LibC.CLONE_NEWNET)
            {
                throw new IOException($"{netnsPath} is a namespace, but not a network namespace");
            }

            unsafe
            {
                Statx st;
                if (LibC.Statx(fd, "", LibC.AT_EMPTY_PATH, LibC.STATX_INO, &st) != 0)
                {
                    throw new IOException($"cannot stat {netnsPath}: {Errno.Describe(LibC.LastError)}");
                }

                return new NetworkNamespaceId(st.DevMajor, st.DevMinor, st.Inode);
            }
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    private static T RunHere<T>(string netnsPath, Func<T> work)
    {
        int original = LibC.Open("/proc/thread-self/ns/net", LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (original < 0) throw new NetlinkException("open(/proc/thread-self/ns/net)", LibC.LastError);
        int target = -1;
        try
        {
            target = LibC.Open(netnsPath, LibC.O_RDONLY | LibC.O_CLOEXEC);
            if (target < 0) throw new NetlinkException($"open({netnsPath})", LibC.LastError);
            if (LibC.SetNs(target, LibC.CLONE_NEWNET) != 0) throw new NetlinkException($"setns({netnsPath}, CLONE_NEWNET)", LibC.LastError);
            try
            {
                return work();
            }
            finally
            {
                // If this fails the thread stays in the target namespace, but it is dedicated and exits right after.
                _ = LibC.SetNs(original, LibC.CLONE_NEWNET);
            }
        }
        finally
        {
            if (target >= 0) LibC.Close(target);
            LibC.Close(original);
        }
    }
}

/// <summary>A network namespace's identity: the device and inode of its nsfs file (what <c>ls -iL</c> and <c>net:[INODE]</c> show).</summary>
public readonly record struct NetworkNamespaceId(uint DeviceMajor, uint DeviceMinor, ulong Inode)
{
    public override string ToString() => $"net:[{Inode}]";
}
