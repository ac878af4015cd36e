using Mesh.Discovery.Dns;
using Mesh.Discovery.Model;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Resolver;

/// <summary>
/// Writes a task's resolv.conf (127.0.0.11 as its nameserver, the node's search and options carried over) where the
/// task asked, but only below one of the node's <c>--resolv-conf-root</c> directories and never through a symlink, into
/// a FIFO or over anything but a regular file (<see cref="ConfinedFile"/>).
/// </summary>
public sealed class TaskResolvConfWriter(IReadOnlyList<string> roots, string nodeResolvConf)
{
    public IReadOnlyList<string> Roots => roots;

    /// <summary>True when the file was (re)written; throws saying why the path is refused.</summary>
    public bool Write(string? resolvConfPath)
    {
        var path = TaskPaths.ResolvConfPath("resolvConfPath", resolvConfPath);
        var root = roots.FirstOrDefault(r => TaskPaths.IsUnder(path, r))
            ?? throw new TaskRefusedException($"resolvConfPath '{path}' is not under an allowed directory ({string.Join(", ", roots)}; see --resolv-conf-root)");
        var content = ResolvConf.ForTask(ConfinedFile.ReadTrusted(nodeResolvConf) ?? "");
        if (ConfinedFile.Read(root, path) == content)
        {
            return false;
        }

        ConfinedFile.Write(root, path, content);
        return true;
    }
}
