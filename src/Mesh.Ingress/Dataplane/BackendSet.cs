using Mesh.Discovery.Model;
using Mesh.Ingress.HealthChecks;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// The task addresses one service load-balances to on one network, in a stable order. With a health check and this
/// node's verdicts, <see cref="Addresses"/> holds the tasks in rotation and <see cref="Unhealthy"/> the ones taken out
/// (the ipvs dataplane keeps those at weight 0); when every task is unhealthy, all are in rotation and
/// <see cref="FailOpen"/> says so: a service is never left without backends by its health check.
/// </summary>
public sealed record BackendSet(ClusterService Service, IReadOnlyList<string> Addresses)
{
    /// <summary>Addresses of tasks this node found unhealthy, not in <see cref="Addresses"/>.</summary>
    public IReadOnlyList<string> Unhealthy { get; init; } = [];

    /// <summary>Every task is unhealthy: <see cref="Addresses"/> holds them all.</summary>
    public bool FailOpen { get; init; }

    /// <summary>Running tasks grouped by service name, sorted by task name: built once per desired state, so that
    /// looking up every service's backends stays linear in the number of tasks.</summary>
    public static ILookup<string, ServiceTask> RunningTasksByService(ClusterState state) =>
        state.Tasks
            .Where(t => t.State == TaskState.Running)
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToLookup(t => t.Service, StringComparer.OrdinalIgnoreCase);

    /// <summary>The addresses on <paramref name="network"/> of <paramref name="service"/>'s running tasks.</summary>
    public static BackendSet For(ILookup<string, ServiceTask> tasksByService, ClusterService service, string network, BackendHealth? health = null) =>
        Of(service, tasksByService[service.Name], network, health);

    /// <summary>The addresses on <paramref name="network"/> of <paramref name="service"/>'s running tasks on <paramref name="node"/> (none when null).</summary>
    public static BackendSet ForNode(ILookup<string, ServiceTask> tasksByService, ClusterService service, string network, string? node, BackendHealth? health = null) =>
        Of(service, node is null ? [] : tasksByService[service.Name].Where(t => t.Node == node), network, health);

    /// <summary>The tasks' addresses, split by this node's verdicts when the service has a health check.</summary>
    public static BackendSet Of(ClusterService service, IEnumerable<ServiceTask> tasks, string network, BackendHealth? health)
    {
        ArgumentNullException.ThrowIfNull(service);
        var withAddress = tasks.Select(t => (t.Name, Address: t.Addresses.GetValueOrDefault(network))).Where(t => t.Address is not null).ToList();
        if (health is null || service.HealthCheck is null || health.Unhealthy.Count == 0)
        {
            return new BackendSet(service, withAddress.Select(t => t.Address!).ToArray());
        }

        var healthy = withAddress.Where(t => !health.IsUnhealthy(t.Name)).Select(t => t.Address!).ToArray();
        if (healthy.Length == 0 && withAddress.Count > 0)
        {
            return new BackendSet(service, withAddress.Select(t => t.Address!).ToArray()) { FailOpen = true };
        }

        return new BackendSet(service, healthy) { Unhealthy = withAddress.Where(t => health.IsUnhealthy(t.Name)).Select(t => t.Address!).ToArray() };
    }
}
