using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Planning;
using Mesh.Ingress.Resolver;

namespace Mesh.Ingress.Daemon;

/// <summary>
/// Converges one local task's namespace to its <see cref="TaskNamespacePlan"/>: the ingress and DNS rules, the VIPs'
/// backend choice, what the other dataplane left there, resolv.conf and the reply route. A failing object fails the
/// namespace with a <see cref="NamespaceConvergeException"/> that names the task, the namespace and the object; the
/// other namespaces are the caller's (<see cref="TaskNamespaceSync"/>) to go on with.
/// </summary>
public sealed class TaskNamespaceExecutor(
    IDataplane dataplane,
    DataplaneSwitchCleanup otherDataplane,
    TaskRulesWriter taskRules,
    TaskResolvConfWriter resolvConf,
    ClientReplyRoutes replyRoutes) : INamespaceExecutor<TaskNamespacePlan>
{
    /// <summary>Converges the namespace; <see cref="ChangedObjects"/> says what changed.</summary>
    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, TaskNamespacePlan desired, CancellationToken cancellationToken) =>
        (await ChangedObjects(netns, desired, cancellationToken).ConfigureAwait(false)).Count > 0;

    /// <summary>Converges the namespace and returns the kinds of objects that changed ("task", "task-vips", …).</summary>
    public async Task<IReadOnlyList<string>> ChangedObjects(NetworkNamespacePath netns, TaskNamespacePlan desired, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var where = NamespaceConvergeException.Task(desired.Task, netns);
        var changed = new List<string>();
        if (await NamespaceConvergeException.Wrap(where, "task rules", () => taskRules.ConvergeAsync(netns, desired.Ingress, ct), ct).ConfigureAwait(false))
        {
            changed.Add("task");
        }

        if (await NamespaceConvergeException.Wrap(where, $"task VIPs ({dataplane.Name})", () => dataplane.ConvergeTaskAsync(netns, desired.Vips, ct), ct).ConfigureAwait(false))
        {
            changed.Add("task-vips");
        }

        if (await NamespaceConvergeException.Wrap(where, "the other dataplane's leftovers", () => otherDataplane.TaskAsync(netns, ct), ct).ConfigureAwait(false))
        {
            changed.Add("other-dataplane");
        }

        if (desired.ResolvConfPath is { } resolv
            && await NamespaceConvergeException.Wrap(where, $"resolv.conf {resolv}", () => Task.FromResult(resolvConf.Write(resolv)), ct).ConfigureAwait(false))
        {
            changed.Add("resolv.conf");
        }

        // Last: it fails (and is retried soon) while the runtime has not attached the ingress leg yet.
        if (desired.ReplyRoute is { } route
            && await NamespaceConvergeException.Wrap(where, "reply routes", () => replyRoutes.EnsureAsync(netns, route.TaskAddress, route.SandboxAddress, ct), ct).ConfigureAwait(false))
        {
            changed.Add("task-reply-routes");
        }

        return changed;
    }
}
