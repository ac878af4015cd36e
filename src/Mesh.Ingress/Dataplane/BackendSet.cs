using Mesh.Discovery.Model;

namespace Mesh.Ingress.Dataplane;

/// <summary>The task addresses one service load-balances to on one network, in a stable order.</summary>
public sealed record BackendSet(ClusterService Service, IReadOnlyList<string> Addresses)
{
    /// <summary>Running tasks of <paramref name="service"/> with an address on <paramref name="network"/>, sorted by task name.</summary>
    public static BackendSet For(ClusterState state, ClusterService service, string network) => new(
        service,
        state.Tasks
            .Where(t => t.State == TaskState.Running && string.Equals(t.Service, service.Name, StringComparison.OrdinalIgnoreCase))
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .Select(t => t.Addresses.GetValueOrDefault(network))
            .OfType<string>()
            .ToArray());
}
