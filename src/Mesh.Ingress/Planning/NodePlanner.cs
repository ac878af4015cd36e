using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.HealthChecks;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Overlay;

namespace Mesh.Ingress.Planning;

/// <summary>
/// Computes the <see cref="NodePlan"/>: a function of the cluster state, this node, the health verdicts and the DNS
/// listener ports already bound, touching no kernel object. Its only state is the sandbox table's
/// <see cref="IngressSandboxTable.Builder"/>, which keeps each service's elements between passes so that a change is
/// planned by the services it touched (the same input still gives an equal plan), and the last overlay, host and sandbox
/// plans, given again for the same state object, node and verdicts (what a resync plans from). The daemon's two loops each plan
/// their part: the node loop the overlays, the host and the sandbox (<see cref="PlanOverlay"/>, <see cref="PlanHost"/>,
/// <see cref="PlanSandbox"/>, one pass at a time), the task loop the task namespaces (<see cref="PlanTasks"/>, no state).
/// </summary>
/// <param name="nftables">The dataplane in use: nftables, else ipvs.</param>
/// <param name="host">The node's own namespace: the daemon's (tests give a named one).</param>
public sealed class NodePlanner(bool nftables, NodeNetworkOptions network, IpvsOptions ipvs, NetworkNamespacePath? host = null)
{
    private readonly IngressSandboxTable.Builder _sandboxTable = new();
    private readonly NetworkNamespacePath _host = host ?? NetworkNamespacePath.Current;
    private readonly NetworkNamespacePath _sandbox = NetworkNamespacePath.Named(network.IngressSandbox);

    // The last overlay and host plans with what they were made from: a resync (every 30 s) plans from the very same
    // state object, and at 10,000 services × 5 tasks making them again cost tens of MB that the GC then kept committed.
    private (ClusterState State, ClusterNode Node, OverlayPlan Plan)? _overlay;
    private (ClusterState State, string Node, BackendHealth? Health, HostPlan Plan)? _hostPlan;
    private (ClusterState State, ClusterNode Node, BackendHealth? Health, SandboxPlan Plan)? _sandboxPlan;

    /// <summary>The sandbox table's builder: how much its last pass looked at (the scale scenario checks it).</summary>
    public IngressSandboxTable.Builder SandboxTable => _sandboxTable;

    /// <param name="dns">The ports of each local task's DNS listeners, by task name (a task not there gets no DNS rules).</param>
    public NodePlan Plan(ClusterState state, ClusterNode node, BackendHealth? health, IReadOnlyDictionary<string, DnsPorts> dns)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new(PlanHost(state, node.Name, health), PlanOverlay(state, node), PlanSandbox(state, node, health), PlanTasks(state, node.Name, dns));
    }

    /// <summary>The overlays <paramref name="node"/> carries and their remote endpoints, sending from its advertise address.</summary>
    public OverlayPlan PlanOverlay(ClusterState state, ClusterNode node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (_overlay is { } last && ReferenceEquals(last.State, state) && last.Node == node)
        {
            return last.Plan;
        }

        var plan = OverlayPlanner.Plan(state, node.Name, node.AdvertiseAddress, network.IngressBridge);
        _overlay = (state, node, plan);
        return plan;
    }

    public HostPlan PlanHost(ClusterState state, string node, BackendHealth? health)
    {
        if (_hostPlan is { } last && ReferenceEquals(last.State, state) && last.Node == node && ReferenceEquals(last.Health, health))
        {
            return last.Plan;
        }

        var plan = new HostPlan(_host, HostRules.Build(state, network, node, health), nftables ? HostNatTable.Build(state, network, node, health) : null);
        _hostPlan = (state, node, health, plan);
        return plan;
    }

    public SandboxPlan PlanSandbox(ClusterState state, ClusterNode node, BackendHealth? health)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(node);
        if (_sandboxPlan is { } last && ReferenceEquals(last.State, state) && last.Node == node && ReferenceEquals(last.Health, health))
        {
            return last.Plan; // the builder would give an equal table; the same object keeps its task addresses made once
        }

        var backends = nftables
            ? BackendChoice.None with { Table = _sandboxTable.Build(state, node.IngressSandboxIp, node.Name, health) }
            : new BackendChoice(null, IpvsSandboxRules.Services(state, ipvs, node.Name, health), IpvsSandboxRules.Rules(state, node.IngressSandboxIp), IpvsSandboxRules.Sysctls);
        var plan = new SandboxPlan(_sandbox, node.IngressSandboxIp, backends, state.Tasks);
        _sandboxPlan = (state, node, health, plan);
        return plan;
    }

    /// <summary>Every task of <paramref name="node"/> that names its namespace and whose service exists, in the store's order.</summary>
    public IReadOnlyList<TaskNamespacePlan> PlanTasks(ClusterState state, string node, IReadOnlyDictionary<string, DnsPorts> dns)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(dns);
        var self = state.Nodes.FirstOrDefault(n => n.Name == node);
        var plans = new List<TaskNamespacePlan>();
        // Made once for every local task, not per task: at 10,000 services × 5 tasks each one sorted and grouped 50,000.
        var running = new Lazy<ILookup<string, ServiceTask>>(() => BackendSet.RunningTasksByService(state), LazyThreadSafetyMode.None);
        var services = new Lazy<Dictionary<string, ClusterService>>(() => ServicesByName(state), LazyThreadSafetyMode.None);
        // A task's east-west VIPs depend only on the networks it is on: the tasks on the same networks share one choice
        // (one table object), made once per pass. At 2,000 services on one network and 50 local tasks, making it per
        // task was 270 ms of every task pass, all of it identical tables.
        var vipsByNetworks = new Dictionary<string, BackendChoice>(StringComparer.Ordinal);
        foreach (var task in state.Tasks.Where(t => t.Node == node && t.NetnsPath is not null))
        {
            if (!services.Value.TryGetValue(task.Service, out var service))
            {
                continue;
            }

            var ports = dns.GetValueOrDefault(task.Name);
            var ingress = new TaskIngress(TaskRules.Build(task, service, ports), nftables ? TaskIngressTable.Build(task, service, ports) : null, ports);
            var reply = ClientReplyRoutes.Needed(service) && task.Addresses.TryGetValue(OverlayNetwork.IngressName, out var address) && self is not null
                ? new ReplyRoute(address, self.IngressSandboxIp)
                : null;
            var networks = EastWestNetworks(task);
            if (!vipsByNetworks.TryGetValue(networks, out var vips))
            {
                vipsByNetworks[networks] = vips = TaskVips(state, task, running.Value);
            }

            plans.Add(new(task.Name, new NetworkNamespacePath(task.NetnsPath), ingress, vips, task.ResolvConfPath, reply));
        }

        return plans;
    }

    /// <summary>The first service of each name, as <c>FirstOrDefault</c> by name would find it.</summary>
    private static Dictionary<string, ClusterService> ServicesByName(ClusterState state)
    {
        var byName = new Dictionary<string, ClusterService>(state.Services.Count, StringComparer.Ordinal);
        foreach (var service in state.Services)
        {
            byName.TryAdd(service.Name, service);
        }

        return byName;
    }

    /// <summary>What a task's east-west VIPs are made from: its networks but the ingress one, ordered, each name after its length (no separator a name could hold).</summary>
    private static string EastWestNetworks(ServiceTask task) =>
        string.Concat(task.Addresses.Keys.Where(n => n != OverlayNetwork.IngressName).Order(StringComparer.Ordinal)
            .Select(n => string.Create(CultureInfo.InvariantCulture, $"{n.Length}:{n}")));

    /// <summary>The east-west VIPs' backend choice in <paramref name="task"/>'s namespace.</summary>
    public BackendChoice TaskVips(ClusterState state, ServiceTask task) => TaskVips(state, task, BackendSet.RunningTasksByService(state));

    private BackendChoice TaskVips(ClusterState state, ServiceTask task, ILookup<string, ServiceTask> running)
    {
        if (nftables)
        {
            var table = TaskServiceTable.Build(state, task, running);
            return TaskServiceTable.Needed(table) ? BackendChoice.None with { Table = table } : BackendChoice.None;
        }

        var services = IpvsTaskRules.Services(state, task, ipvs, running);
        return services.Count == 0
            ? BackendChoice.None
            : new BackendChoice(null, services.Select(s => s.Service).ToArray(), IpvsTaskRules.Rules(services), IpvsTaskRules.Sysctls);
    }
}
