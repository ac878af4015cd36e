using System.Collections.Concurrent;
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

    /// <summary>Lower-case task name → the tasks whose own queries are answered (running and starting ones).</summary>
    private IReadOnlyDictionary<string, ServiceTask> Queriers { get; init; } = new Dictionary<string, ServiceTask>();

    /// <summary>Service alias → its service (the store keeps aliases unique across services and task names).</summary>
    public IReadOnlyDictionary<string, ClusterService> ServiceAliases { get; private init; } = new Dictionary<string, ClusterService>();

    /// <summary>Task alias → the running tasks that carry it (several tasks may share one).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<ServiceTask>> TaskAliases { get; private init; } = new Dictionary<string, IReadOnlyList<ServiceTask>>();

    /// <summary>(network, address) → the name that owns it: a task name or, for a VIP, the service name.</summary>
    public IReadOnlyDictionary<(string Network, IPAddress Address), string> Owners { get; private init; } = new Dictionary<(string, IPAddress), string>();

    public IReadOnlyDictionary<string, Cidr> Subnets { get; private init; } = new Dictionary<string, Cidr>();

    public static ServiceNameIndex Empty { get; } = new();

    private KnownNames _names = KnownNames.None;
    private readonly ConcurrentDictionary<string, NetworkNames?> _byQuerier = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, NetworkNames> _byNetworks = new(StringComparer.Ordinal);

    public static ServiceNameIndex Build(ClusterState state)
    {
        var running = state.Tasks.Where(t => t.State == TaskState.Running).ToList();
        // A starting task is in no answer, but its own queries are answered: a server commonly resolves what it
        // needs before it listens (and it only listens, and so becomes running, once those answer).
        var queriers = state.Tasks.Where(t => t.State is TaskState.Running or TaskState.Starting)
            .ToDictionary(t => t.Name.ToLowerInvariant(), StringComparer.Ordinal);
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

        var services = state.Services.ToDictionary(s => s.Name.ToLowerInvariant(), StringComparer.Ordinal);
        var tasks = running.ToDictionary(t => t.Name.ToLowerInvariant(), StringComparer.Ordinal);
        var serviceAliases = state.Services.SelectMany(s => s.Aliases.Select(a => (Alias: a.ToLowerInvariant(), Service: s)))
            .DistinctBy(x => x.Alias, StringComparer.Ordinal).ToDictionary(x => x.Alias, x => x.Service, StringComparer.Ordinal);
        var taskAliases = running.SelectMany(t => t.Aliases.Select(a => (Alias: a.ToLowerInvariant(), Task: t))).GroupBy(x => x.Alias, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<ServiceTask>)g.Select(x => x.Task).OrderBy(t => t.Name, StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
        return new ServiceNameIndex
        {
            Services = services,
            TasksOfService = running.GroupBy(t => t.Service.ToLowerInvariant())
                .ToDictionary(g => g.Key, g => (IReadOnlyList<ServiceTask>)g.OrderBy(t => t.Name, StringComparer.Ordinal).ToArray(), StringComparer.Ordinal),
            Tasks = tasks,
            Queriers = queriers,
            ServiceAliases = serviceAliases,
            TaskAliases = taskAliases,
            _names = new KnownNames(services, serviceAliases, tasks, taskAliases),
            Owners = owners,
            Subnets = state.Networks.Where(n => n.Name != OverlayNetwork.IngressName)
                .ToDictionary(n => n.Name, n => Validate.Cidr("subnet", n.Subnet), StringComparer.Ordinal),
        };
    }

    public IReadOnlyList<ServiceTask> TasksOf(string service) => TasksOfService.GetValueOrDefault(service) ?? [];

    /// <summary>
    /// The names a task sees (its networks that have a subnet here), shared by the tasks on the same networks; null for
    /// a task this state does not have. Cached per task id for the life of this index.
    /// </summary>
    internal NetworkNames? NamesFor(string taskId) => _byQuerier.GetOrAdd(taskId, static (id, index) => index.CreateNames(id), this);

    private NetworkNames? CreateNames(string taskId)
    {
        if (!Queriers.TryGetValue(taskId.ToLowerInvariant(), out var querier))
        {
            return null;
        }

        var networks = querier.Addresses.Keys.Where(Subnets.ContainsKey).ToArray();
        return _byNetworks.GetOrAdd(string.Join('\n', networks), static (_, x) => new NetworkNames(x.Index, x.Networks), (Index: this, Networks: networks));
    }

    /// <summary>Whether an unresolvable lower-case name is still ours (NXDOMAIN) rather than forwarded: single labels, <c>tasks.*</c>, and <c>&lt;service&gt;.*</c> (task names, even of tasks already gone).</summary>
    internal bool Owns(ReadOnlySpan<char> name)
    {
        int dot = name.IndexOf('.');
        return dot < 0 || name.StartsWith("tasks.", StringComparison.Ordinal) || _names.IsService(name[..dot]);
    }

    /// <summary>Whether a lower-case name is a service, service alias, task or task alias, or <c>tasks.</c> of a service or alias: the only names that can resolve.</summary>
    internal bool IsKnownName(ReadOnlySpan<char> name) => _names.Contains(name);

    /// <summary>The service a lower-case name or alias stands for, or null.</summary>
    public ClusterService? FindService(string name) => Services.GetValueOrDefault(name) ?? ServiceAliases.GetValueOrDefault(name);

    /// <summary>The index's name tables, looked up by span (no string per query).</summary>
    private sealed class KnownNames(
        Dictionary<string, ClusterService> services,
        Dictionary<string, ClusterService> serviceAliases,
        Dictionary<string, ServiceTask> tasks,
        Dictionary<string, IReadOnlyList<ServiceTask>> taskAliases)
    {
        public static KnownNames None { get; } = new([], [], [], []);

        private readonly Dictionary<string, ClusterService>.AlternateLookup<ReadOnlySpan<char>> _services = services.GetAlternateLookup<ReadOnlySpan<char>>();
        private readonly Dictionary<string, ClusterService>.AlternateLookup<ReadOnlySpan<char>> _serviceAliases = serviceAliases.GetAlternateLookup<ReadOnlySpan<char>>();
        private readonly Dictionary<string, ServiceTask>.AlternateLookup<ReadOnlySpan<char>> _tasks = tasks.GetAlternateLookup<ReadOnlySpan<char>>();
        private readonly Dictionary<string, IReadOnlyList<ServiceTask>>.AlternateLookup<ReadOnlySpan<char>> _taskAliases = taskAliases.GetAlternateLookup<ReadOnlySpan<char>>();

        public bool IsService(ReadOnlySpan<char> name) => _services.ContainsKey(name);

        public bool Contains(ReadOnlySpan<char> name) =>
            IsServiceOrAlias(name) || _tasks.ContainsKey(name) || _taskAliases.ContainsKey(name)
            || (name.StartsWith("tasks.", StringComparison.Ordinal) && IsServiceOrAlias(name[6..]));

        private bool IsServiceOrAlias(ReadOnlySpan<char> name) => _services.ContainsKey(name) || _serviceAliases.ContainsKey(name);
    }
}
