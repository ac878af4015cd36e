using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Mesh.Ipvs.Netlink;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace Mesh.Ipvs;

/// <summary>
/// The one place Mesh enters (or, for the ingress sandbox, creates) another network namespace (the netlink handles
/// here, the daemon's in-namespace DNS listeners and upstream sockets in Mesh.Discovery, its per-namespace sysctls). No existing thread ever moves: a
/// dedicated thread does setns(target) → work → setns(original) and then exits, so no thread-pool thread (and no
/// thread of the caller's) is ever in another namespace, even when the way back fails. Sockets created by the work
/// stay bound to the target namespace for their whole life (a socket's namespace is fixed when it is created), and
/// serve it from any thread afterwards. Needs CAP_SYS_ADMIN.
/// </summary>
public static class NetworkNamespace
{
    /// <summary>
    /// Runs <paramref name="work"/> on a dedicated thread inside the network namespace at <paramref name="netnsPath"/>
    /// (e.g. /run/netns/foo or /proc/PID/ns/net) and returns its result. Exceptions thrown by the work are rethrown
    /// here with their original stack; failing to enter the namespace throws <see cref="NetworkNamespaceException"/>
    /// naming the call and the errno. The work must be synchronous and short, and start no thread: a thread created
    /// from inside it (a Task.Run that grows the thread pool, a timer) would be born in, and stay in, the target
    /// namespace. An async lambda is refused for that reason (what follows its first await would run elsewhere).
    /// </summary>
    public static T Run<T>(string netnsPath, Func<T> work)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentNullException.ThrowIfNull(work);
        if (typeof(Task).IsAssignableFrom(typeof(T)) || typeof(T) == typeof(ValueTask) || (typeof(T).IsGenericType && typeof(T).GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            throw new ArgumentException("the work inside a network namespace must be synchronous, not a task", nameof(work));
        }

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
    public static void Run(string netnsPath, Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        Run<bool>(netnsPath, () =>
        {
            work();
            return true;
        });
    }

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
        var (fd, id) = OpenIdentified(netnsPath);
        close(fd);
        return id;
    }

    /// <summary>
    /// As <see cref="Identify"/>, but the namespace file stays open and its fd is returned with the identity (read from
    /// that fd, so both name one namespace): the caller closes it. While it is open the namespace cannot be freed.
    /// </summary>
    internal static (int Fd, NetworkNamespaceId Id) OpenIdentified(string netnsPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        var follow = netnsPath.StartsWith("/proc/", StringComparison.Ordinal);
        int fd = LibCExtras.Open(netnsPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
        if (fd < 0)
        {
            int openErrno = errno;
            throw openErrno switch
            {
                Errno.ENOENT => new FileNotFoundException($"{netnsPath} does not exist", netnsPath),
                Errno.ELOOP => new IOException($"{netnsPath} is a symbolic link, not a network namespace"),
                _ => new IOException($"cannot open {netnsPath}: {Errno.Describe(openErrno)}"),
            };
        }

        try
        {
            int type = ioctl(fd, LibCExtras.NS_GET_NSTYPE);
            if (type < 0)
            {
                throw new IOException($"{netnsPath} is not a namespace file");
            }

            if (type != CLONE_NEWNET)
            {
                throw new IOException($"{netnsPath} is a namespace, but not a network namespace");
            }

            unsafe
            {
                statx st;
                if (LibCExtras.Statx(fd, "", AT_EMPTY_PATH, STATX_INO, &st) != 0)
                {
                    throw new IOException($"cannot stat {netnsPath}: {Errno.Describe(errno)}");
                }

                return (fd, new NetworkNamespaceId(st.stx_dev_major, st.stx_dev_minor, st.stx_ino));
            }
        }
        catch
        {
            close(fd);
            throw;
        }
    }

    /// <summary>Where named network namespaces live (iproute2's NETNS_RUN_DIR).</summary>
    public const string NamedRoot = "/var/run/netns";

    /// <summary>
    /// Creates the named network namespace NAMED_ROOT/<paramref name="name"/> as <c>ip netns add</c> does (iproute2
    /// 6.1's netns_add, step by step): the directory; under an exclusive flock on it, the directory made a shared
    /// mount (bind-mounted onto itself first when it is not a mount point), so the namespace's bind mount propagates to
    /// other mount namespaces; the empty file (O_EXCL: an existing one is EEXIST); then a dedicated thread unshares a
    /// new network namespace and bind-mounts its own /proc/thread-self/ns/net onto the file, and exits (no thread
    /// is ever moved back). A failure after the file was made removes it. Needs CAP_SYS_ADMIN.
    /// </summary>
    public static void CreateNamed(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name is "." or ".." || name.Length > 255 || name.Any(c => c is '/' or '\0' || char.IsControl(c)))
        {
            throw new ArgumentException($"'{name}' is not a network namespace name", nameof(name));
        }

        string path = $"{NamedRoot}/{name}";
        if (LibCExtras.MkdirAt(AT_FDCWD, NamedRoot, 0x1ed /* 0755 */) != 0 && errno != Errno.EEXIST)
        {
            throw new NetworkNamespaceException($"mkdir({NamedRoot})", path, errno);
        }

        MakeRunDirectoryShared(path);
        int fd = LibCExtras.Open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC);
        if (fd < 0) throw new NetworkNamespaceException($"open({path}, O_CREAT|O_EXCL)", path, errno);
        close(fd);

        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                if (unshare(CLONE_NEWNET) != 0) throw new NetworkNamespaceException("unshare(CLONE_NEWNET)", path, errno);
                if (LibCExtras.Mount("/proc/thread-self/ns/net", path, "none", LibCExtras.MS_BIND) != 0)
                {
                    throw new NetworkNamespaceException($"mount --bind /proc/thread-self/ns/net {path}", path, errno);
                }
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns-add:" + name,
        };
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            _ = LibCExtras.UnlinkAt(AT_FDCWD, path, 0);
            failure.Throw();
        }
    }

    private static void MakeRunDirectoryShared(string path)
    {
        // Concurrent `ip netns add`s would stack bind mounts of the directory on itself: iproute2 serialises with
        // this lock, and so does Mesh, with iproute2 and with itself.
        int lockFd = LibCExtras.Open(NamedRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (lockFd >= 0) _ = LibCExtras.Flock(lockFd, LibCExtras.LOCK_EX);
        try
        {
            bool madeMountPoint = false;
            while (LibCExtras.Mount("", NamedRoot, "none", LibCExtras.MS_SHARED | LibCExtras.MS_REC) != 0)
            {
                int e = errno;
                if (e != Errno.EINVAL || madeMountPoint) throw new NetworkNamespaceException($"mount --make-rshared {NamedRoot}", path, e);
                if (LibCExtras.Mount(NamedRoot, NamedRoot, "none", LibCExtras.MS_BIND | LibCExtras.MS_REC) != 0)
                {
                    throw new NetworkNamespaceException($"mount --rbind {NamedRoot} {NamedRoot}", path, errno);
                }

                madeMountPoint = true;
            }
        }
        finally
        {
            if (lockFd >= 0)
            {
                _ = LibCExtras.Flock(lockFd, LibCExtras.LOCK_UN);
                close(lockFd);
            }
        }
    }

    private static T RunHere<T>(string netnsPath, Func<T> work)
    {
        int original = LibCExtras.Open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (original < 0) throw new NetworkNamespaceException("open(/proc/thread-self/ns/net)", netnsPath, errno);
        int target = -1;
        try
        {
            target = LibCExtras.Open(netnsPath, O_RDONLY | O_CLOEXEC);
            if (target < 0) throw new NetworkNamespaceException($"open({netnsPath})", netnsPath, errno);
            if (setns(target, CLONE_NEWNET) != 0) throw new NetworkNamespaceException($"setns({netnsPath}, CLONE_NEWNET)", netnsPath, errno);
            try
            {
                return work();
            }
            finally
            {
                // If this fails the thread stays in the target namespace, but it is dedicated and exits right after.
                _ = setns(original, CLONE_NEWNET);
            }
        }
        finally
        {
            if (target >= 0) close(target);
            close(original);
        }
    }
}

/// <summary>
/// Entering a network namespace failed: <see cref="Operation"/> is the call (e.g. "setns(/run/netns/x, CLONE_NEWNET)")
/// and <see cref="Errno"/> the positive errno it reported.
/// </summary>
public sealed class NetworkNamespaceException(string operation, string netnsPath, int errno)
    : IOException($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} ({Netlink.Errno.Name(errno)}, errno {errno})")
{
    /// <summary>The call that failed, with its arguments.</summary>
    public string Operation { get; } = operation;

    /// <summary>The namespace that was to be entered.</summary>
    public string NetnsPath { get; } = netnsPath;

    /// <summary>Positive errno value.</summary>
    public int Errno { get; } = errno;
}

/// <summary>A network namespace's identity: the device and inode of its nsfs file (what <c>ls -iL</c> and <c>net:[INODE]</c> show).</summary>
public readonly record struct NetworkNamespaceId(uint DeviceMajor, uint DeviceMinor, ulong Inode)
{
    public override string ToString() => $"net:[{Inode}]";
}
