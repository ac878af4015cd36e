using Mesh.Discovery.Model;
using Mesh.Discovery.Store;
using Mesh.Ingress.Daemon;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Ingress.Api;

/// <summary>
/// What the API can say about a task's paths before storing it, on top of the store's syntax rules
/// (<see cref="TaskPaths"/>): the resolv.conf path must lie below this daemon's <c>--resolv-conf-root</c> directories
/// (nodes of one cluster are expected to share them; the task's node checks again with its own), and when the task
/// is for this very node, its namespace must not be one the node refuses (host, daemon, ingress sandbox). The real
/// objects of a task on another node are that node's to check, when it converges the task.
/// </summary>
internal static class TaskPathChecks
{
    public static void Check(TaskSpec spec, IServiceProvider services)
    {
        var options = services.GetService<DaemonOptions>();
        if (spec.ResolvConfPath is { } resolvConf)
        {
            TaskPaths.UnderRoot("resolvConfPath", TaskPaths.ResolvConfPath("resolvConfPath", resolvConf), options?.ResolvConfRoots ?? TaskPaths.DefaultResolvConfRoots);
        }

        if (spec.NetnsPath is { } netns && options is not null && string.Equals(spec.Node, options.Node, StringComparison.OrdinalIgnoreCase) && services.GetService<TaskNamespaceGuard>() is { } guard)
        {
            try
            {
                guard.Check(netns, guard.Reserved());
            }
            catch (FileNotFoundException)
            {
                // Not created yet: the node checks it when it appears.
            }
            catch (Exception e) when (e is IOException or TaskRefusedException)
            {
                throw new ValidationException("netnsPath", e.Message);
            }
        }
    }
}
