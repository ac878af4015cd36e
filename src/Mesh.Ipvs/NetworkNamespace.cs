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
