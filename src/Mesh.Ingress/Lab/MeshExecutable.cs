using System.Diagnostics;

namespace Mesh.Ingress.Lab;

/// <summary>How to start this same mesh binary again (as the apphost, or as <c>dotnet mesh.dll</c>).</summary>
public static class MeshExecutable
{
    public static (string File, IReadOnlyList<string> Prefix) Command()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where the mesh executable is");
        return Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? (process, [typeof(MeshExecutable).Assembly.Location])
            : (process, []);
    }

    /// <summary>
    /// Starts <c>mesh ARGS</c> inside network namespace <paramref name="netns"/>, in its own session, detached
    /// from ours; returns its pid. nsenter rather than <c>ip netns exec</c>: the latter also gives the process a
    /// private mount namespace, and namespaces the daemon then creates (its ingress sandbox) would be mounted
    /// where nobody else can see them.
    /// </summary>
    public static int StartDetachedIn(string netns, IReadOnlyList<string> arguments, string logFile = "/dev/null")
    {
        var (file, prefix) = Command();
        return StartDetachedIn(netns, file, [.. prefix, .. arguments], logFile);
    }

    /// <summary>
    /// Starts any program inside <paramref name="netns"/>, detached as <see cref="StartDetachedIn(string, IReadOnlyList{string})"/> does,
    /// with its output appended to <paramref name="logFile"/>. A fixed <c>sh</c> script does the redirection; the
    /// program and its arguments reach it as positional parameters, never as script text.
    /// </summary>
    public static int StartDetachedIn(string netns, string file, IReadOnlyList<string> arguments, string logFile = "/dev/null")
    {
        StopPassingOnInheritedDescriptors();
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false };
        string[] argv =
        [
            "nsenter", $"--net={Kernel.NetworkNamespacePath.Named(netns).Path}", "--",
            "sh", "-c", "log=$1; shift; exec \"$@\" </dev/null >>\"$log\" 2>&1", "sh", logFile, file, .. arguments,
        ];
        foreach (var a in argv)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file} in {netns}");
        return process.Id;
    }

    /// <summary>
    /// Marks every descriptor above stderr close-on-exec before a child starts. What this process was given stays
    /// usable here but reaches no daemon or task server: `flock /tmp/mesh-lab.lock mesh lab up` would otherwise hand
    /// the lock's descriptor to every daemon, and the lock would stay held for as long as the lab runs.
    /// </summary>
    internal static void StopPassingOnInheritedDescriptors()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fd) && fd > 2)
            {
                var flags = Tmds.Linux.LibC.fcntl(fd, Tmds.Linux.LibC.F_GETFD, 0);
                if (flags >= 0 && (flags & Tmds.Linux.LibC.FD_CLOEXEC) == 0)
                {
                    _ = Tmds.Linux.LibC.fcntl(fd, Tmds.Linux.LibC.F_SETFD, flags | Tmds.Linux.LibC.FD_CLOEXEC);
                }
            }
        }
    }
}
