using Mesh.Discovery.Model;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Overlay;

namespace Mesh.Ingress.Planning;

/// <summary>
/// What this node's kernel should hold, per network namespace: a value computed by <see cref="NodePlanner"/> from the
/// cluster state and handed to the executors (<see cref="INamespaceExecutor{TDesired}"/>), one namespace at a time.
/// <see cref="Overlay"/>: the overlays' links and FDB/neighbour entries, in the daemon's own namespace (where the
/// sandbox's and the tasks' legs attach to the bridges), converged before anything that attaches to them.
/// </summary>
public sealed record NodePlan(HostPlan Host, OverlayPlan Overlay, SandboxPlan Sandbox, IReadOnlyList<TaskNamespacePlan> Tasks);

/// <summary>
/// The node's own namespace (packet walk step 1): <see cref="HostRules"/> (all of it with the ipvs dataplane; with
/// nftables only the FORWARD accepts, kept where iptables' FORWARD may drop) and, with nftables, <see cref="HostNatTable"/>.
/// </summary>
public sealed record HostPlan(NetworkNamespacePath Netns, IptablesRuleset Rules, NftDesiredTable? NatTable);

/// <summary>
/// The backend choice in one namespace as the dataplane in use writes it: nftables one table; ipvs fwmark services, the
/// iptables marks that steer to them and the sysctls they need. <see cref="None"/>: nothing of the dataplane's there.
/// </summary>
public sealed record BackendChoice(
    NftDesiredTable? Table,
    IReadOnlyList<IpvsDesiredService> Services,
    IptablesRuleset Marks,
    IReadOnlyList<(string Key, string Value)> Sysctls)
{
    public static BackendChoice None { get; } = new(null, [], IptablesRuleset.Empty, []);
}

/// <summary>
/// The ingress sandbox: its links (a leg on the gateway bridge, one on the ingress overlay at <see cref="IngressAddress"/>,
/// this node's address there), its rules (packet walk steps 2-4), and the cluster's tasks, whose ingress addresses the
/// sandbox should know: one that came or went has its neighbour entry dropped there (a freed address handed to a new
/// task has a new MAC).
/// </summary>
public sealed record SandboxPlan(NetworkNamespacePath Netns, string IngressAddress, BackendChoice Backends, IReadOnlyList<ServiceTask> Tasks)
{
    /// <summary>
    /// The tasks' ingress addresses, made when the executor asks, after the rules are written: at 10,000 services × 10
    /// tasks the set costs several times what planning one replaced task does (the sandbox builder's ~2 ms).
    /// </summary>
    public IReadOnlySet<string> TaskAddresses => field ??=
        Tasks.Select(t => t.Addresses.GetValueOrDefault(OverlayNetwork.IngressName)).OfType<string>().ToHashSet(StringComparer.Ordinal);
}

/// <summary>
/// One local task's namespace: its ingress and DNS rules (<see cref="TaskIngress"/>), the east-west VIPs' backend choice,
/// its resolv.conf and, for a service whose clients' addresses are kept, the reply route to the sandbox.
/// </summary>
public sealed record TaskNamespacePlan(
    string Task,
    NetworkNamespacePath Netns,
    TaskIngress Ingress,
    BackendChoice Vips,
    string? ResolvConfPath,
    ReplyRoute? ReplyRoute);

/// <summary>
/// A task's ingress and DNS rules: <see cref="TaskRules"/> in iptables' terms (written with the ipvs dataplane, and
/// shown by <c>mesh trace</c> with either) and, with nftables, <see cref="TaskIngressTable"/>; for the DNS listeners on
/// <see cref="Dns"/>, bound before the plan was made.
/// </summary>
public sealed record TaskIngress(IptablesRuleset Rules, NftDesiredTable? Table, DnsPorts? Dns);

/// <summary>Replies to clients leave the task through the sandbox (see <see cref="ClientReplyRoutes"/>).</summary>
public sealed record ReplyRoute(string TaskAddress, string SandboxAddress);
