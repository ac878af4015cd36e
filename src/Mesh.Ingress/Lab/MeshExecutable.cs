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

    /// <summary>Starts <c>ip netns exec NETNS mesh ARGS</c> in its own session, detached from ours; returns its pid.</summary>
    public static int StartDetachedIn(string netns, IReadOnlyList<string> arguments)
    {
        var (file, prefix) = Command();
        var info = new ProcessStartInfo("setsid")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in (string[])["ip", "netns", "exec", netns, file, .. prefix, .. arguments])
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start mesh in {netns}");
        process.StandardInput.Close();
        return process.Id;
    }
}
