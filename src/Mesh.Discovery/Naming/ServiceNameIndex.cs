using System.Net;
using Mesh.Discovery.Model;

namespace Mesh.Discovery.Naming;

/// <summary>
/// The cluster state arranged for name lookups: built once per state change, read lock-free by every query.
/// Names are kept lower-case; the ingress network is never visible to DNS (as in Docker).
/// </summary>
public sealed class ServiceNameIndex
{
    private ServiceNameIndex()
    {
    }

    public IReadOnlyDictionary<string, ClusterService> Services { get; private init; } = new Dictionary<string, ClusterService>();

    public IReadOnlyDictionary<string, IReadOnlyList<ServiceTask>> TasksOfService { get; private init; } = new Dictionary<string, IReadOnlyList<ServiceTask>>();

    public IReadOnlyDictionary<string, ServiceTask> Tasks { get; private init; } = new Dictionary<string, ServiceTask>();

    /// <summary>Service alias → its service (the store keeps aliases unique across services and task names).</summary>
    public IReadOnlyDictionary<string, ClusterService> ServiceAliases { get; private init; } = new Dictionary<string, ClusterService>();

    /// <summary>Task alias → the running tasks that carry it (several tasks may share one).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<ServiceTask>> TaskAliases { get; private init; } = new Dictionary<string, IReadOnlyList<ServiceTask>>();

    /// <summary>(network, address) → the name that owns it: a task name or, for a VIP, the service name.</summary>
    public IReadOnlyDictionary<(string Network, IPAddress Address), string> Owners { get; private init; } = new Dictionary<(string, IPAddress), string>();

    public IReadOnlyDictionary<string, Cidr> Subnets { get; private init; } = new Dictionary<string, Cidr>();

    public static ServiceNameIndex Empty { get; } = new();

    public static ServiceNameIndex Build(ClusterState state)
    {
        var running = state.Tasks.Where(t => t.State == TaskState.Running).ToList();
        var owners = new Dictionary<(string, IPAddress), string>();
        foreach (var service in state.Services)
        {
            foreach (var (network, vip) in service.Vips)
            {
                if (network != OverlayNetwork.IngressName && IPAddress.TryParse(vip, out var ip))
                {
                    owners[(network, ip)] = service.Name.ToLowerInvariant();
                }
            }
        }

        foreach (var task in running)
        {
            foreach (var (network, address) in task.Addresses)
            {
                if (network != OverlayNetwork.IngressName && IPAddress.TryParse(address, out var ip))
                {
                    owners[(network, ip)] = task.Name.ToLowerInvariant();
                }
            }
        }

        return new ServiceNameIndex
        {
            Services = state.Services.ToDictionary(s => s.Name.ToLowerInvariant(), StringComparer.Ordinal),
            TasksOfService = running.GroupBy(t => t.Service.ToLowerInvariant())
                .ToDictionary(g => g.Key, g => (IReadOnlyList<ServiceTask>)g.OrderBy(t => t.Name, StringComparer.Ordinal).ToArray(), StringComparer.Ordinal),
            Tasks = running.ToDictionary(t => t.Name.ToLowerInvariant(), StringComparer.Ordinal),
            ServiceAliases = state.Services.SelectMany(s => s.Aliases.Select(a => (Alias: a.ToLowerInvariant(), Service: s)))
                .DistinctBy(x => x.Alias, StringComparer.Ordinal).ToDictionary(x => x.Alias, x => x.Service, StringComparer.Ordinal),
            TaskAliases = running.SelectMany(t => t.Aliases.Select(a => (Alias: a.ToLowerInvariant(), Task: t))).GroupBy(x => x.Alias, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => (IReadOnlyList<ServiceTask>)g.Select(x => x.Task).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray(), StringComparer.Ordinal),
            Owners = owners,
            Subnets = state.Networks.Where(n => n.Name != OverlayNetwork.IngressName)
                .ToDictionary(n => n.Name, n => Validate.Cidr("subnet", n.Subnet), StringComparer.Ordinal),
        };
    }

    public IReadOnlyList<ServiceTask> TasksOf(string service) => TasksOfService.GetValueOrDefault(service) ?? [];

    /// <summary>The service a lower-case name or alias stands for, or null.</summary>
    public ClusterService? FindService(string name) => Services.GetValueOrDefault(name) ?? ServiceAliases.GetValueOrDefault(name);
}
