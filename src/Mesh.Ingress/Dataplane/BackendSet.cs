using Mesh.Discovery.Model;

namespace Mesh.Ingress.Dataplane;

/// <summary>The task addresses one service load-balances to on one network, in a stable order.</summary>
public sealed record BackendSet(ClusterService Service, IReadOnlyList<string> Addresses)
{
    /// <summary>Running tasks grouped by service name, sorted by task name: built once per desired state, so that
    /// looking up every service's backends stays linear in the number of tasks.</summary>
    public static ILookup<string, ServiceTask> RunningTasksByService(ClusterState state) =>
        state.Tasks
            .Where(t => t.State == TaskState.Running)
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToLookup(t => t.Service, StringComparer.OrdinalIgnoreCase);

    /// <summary>The addresses on <paramref name="network"/> of <paramref name="service"/>'s running tasks.</summary>
    public static BackendSet For(ILookup<string, ServiceTask> tasksByService, ClusterService service, string network) => new(
        service,
        tasksByService[service.Name].Select(t => t.Addresses.GetValueOrDefault(network)).OfType<string>().ToArray());

    /// <summary>The addresses on <paramref name="network"/> of <paramref name="service"/>'s running tasks on <paramref name="node"/> (none when null).</summary>
    public static BackendSet ForNode(ILookup<string, ServiceTask> tasksByService, ClusterService service, string network, string? node) => new(
        service,
        node is null ? [] : tasksByService[service.Name].Where(t => t.Node == node).Select(t => t.Addresses.GetValueOrDefault(network)).OfType<string>().ToArray());
}
