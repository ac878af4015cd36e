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
    public static int StartDetachedIn(string netns, IReadOnlyList<string> arguments)
    {
        var (file, prefix) = Command();
        return StartDetachedIn(netns, file, [.. prefix, .. arguments]);
    }

    /// <summary>Starts any program inside <paramref name="netns"/>, detached as <see cref="StartDetachedIn(string, IReadOnlyList{string})"/> does.</summary>
    public static int StartDetachedIn(string netns, string file, IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in (string[])["nsenter", $"--net={Kernel.NetworkNamespacePath.Named(netns).Path}", "--", file, .. arguments])
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start mesh in {netns}");
        process.StandardInput.Close();
        return process.Id;
    }
}
