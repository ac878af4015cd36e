using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Nftables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk steps 2-4 for the nftables dataplane, in the ingress sandbox: mark by published
/// protocol/port (one map lookup), dispatch by mark (one verdict-map lookup) to the service's chain, which
/// DNATs to a task address and the target port (numgen over an anonymous map, or jhash of the client's address over
/// a Maglev table: <see cref="Choice"/>), and SNAT to the
/// sandbox's ingress address so replies come back through it. Lookups stay O(1) however many services there
/// are. DNATing to the target port directly (where IPVS keeps the published port and the task REDIRECTs it)
/// saves a NAT step in the task and means a new task is reachable as soon as any node routes to it.
/// </summary>
public static class IngressSandboxTable
{
    public const string Family = "ip";
    public const string Name = "mesh";
    public const string ServiceChainPrefix = "svc-";

    /// <param name="node">This node's name: a <c>traffic=local</c> port goes to its tasks only (none when null).</param>
    /// <param name="health">This node's health verdicts: unhealthy tasks are left out (<see cref="BackendSet.Of"/>).</param>
    public static NftDesiredTable Build(ClusterState state, string sandboxIngressAddress, string? node = null, HealthChecks.BackendHealth? health = null)
    {
        var gateway = NodeNetworkOptions.SandboxGatewayInterface;
        var ingress = NodeNetworkOptions.SandboxIngressInterface;
        var subnet = OverlayNetwork.Ingress.Subnet;
        var skeleton = $$"""
              map published-ports { type inet_proto . inet_service : mark; }
              map service-chains { type mark : verdict; }
              chain mark-published {
                type filter hook prerouting priority mangle; policy accept;
                iifname "{{gateway}}" fib daddr type local meta l4proto { tcp, udp } meta mark set meta l4proto . th dport map @published-ports
              }
              chain dispatch {
                type nat hook prerouting priority dstnat; policy accept;
                meta mark vmap @service-chains
              }
              chain source-nat {
                type nat hook postrouting priority srcnat; policy accept;
                meta mark & {{LocalTrafficMark}} != 0 return
                oifname "{{ingress}}" ip daddr {{subnet}} ct status dnat snat to {{sandboxIngressAddress}}
              }
            """;

        var published = new List<string>();
        var dispatch = new List<string>();
        var chains = new List<NftChain>();
        var tasks = BackendSet.RunningTasksByService(state);
        foreach (var service in state.Services.Where(s => MeshPorts(s).Any()).OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var mark = Mark(service.FirewallMark);
            var chain = ServiceChainPrefix + service.Name.ToLowerInvariant();
            published.AddRange(MeshPorts(service).Select(p => $"{HostRules.Proto(p.Protocol)} . {p.Published.ToString(CultureInfo.InvariantCulture)} : {mark}"));
            dispatch.Add($"{mark} : goto {chain}");
            chains.Add(new NftChain(chain, PublishedPortRules(BackendSet.For(tasks, service, OverlayNetwork.IngressName, health), BackendSet.ForNode(tasks, service, OverlayNetwork.IngressName, node, health))));
        }

        return new NftDesiredTable(
            Family,
            Name,
            skeleton,
            [new NftMapElements("published-ports", published), new NftMapElements("service-chains", dispatch)],
            chains,
            ServiceChainPrefix);
    }

    /// <summary>
    /// Set (besides the service's mark) on the first packet of a <c>traffic=local</c> connection, so that source-nat
    /// leaves it alone and the task sees the client. Service marks use the low 24 bits (<see cref="Limits.MaxFirewallMark"/>).
    /// </summary>
    public const string LocalTrafficMark = "0x01000000";

    /// <summary>The ports this sandbox's kernel balances: host-mode ports go straight from the node to a task, and
    /// proxy=v2 ports are left to the relay listening in the sandbox (<see cref="Proxy.ProxyRelay"/>).</summary>
    internal static IEnumerable<PublishedPort> MeshPorts(ClusterService service) =>
        service.Ports.Where(p => p.Mode == PublishMode.Ingress && p.Proxy == ProxyProtocol.None);

    /// <summary>The ports the node DNATs into this sandbox: the kernel-balanced ones and the relay's.</summary>
    internal static IEnumerable<PublishedPort> SandboxPorts(ClusterService service) =>
        service.Ports.Where(p => p.Mode == PublishMode.Ingress);

    /// <summary>
    /// Per published port, round robin over the backends' addresses with the target port: every task's for
    /// <c>traffic=cluster</c>, this node's own (<paramref name="local"/>) for <c>traffic=local</c>, marked so it is not
    /// SNATed. With no backend the packet is left alone: it is then delivered locally in the sandbox, where nothing
    /// listens, so TCP clients get an immediate reset instead of a timeout (what a node without a local task must do).
    /// </summary>
    internal static IReadOnlyList<string> PublishedPortRules(BackendSet backends, BackendSet? local = null)
    {
        var rules = new List<string>();
        foreach (var port in MeshPorts(backends.Service).OrderBy(p => p.Protocol).ThenBy(p => p.Published))
        {
            var isLocal = port.Traffic == TrafficPolicy.Local;
            var addresses = isLocal ? local?.Addresses ?? [] : backends.Addresses;
            if (addresses.Count == 0)
            {
                continue;
            }

            var target = port.Target.ToString(CultureInfo.InvariantCulture);
            var keep = isLocal ? $"meta mark set meta mark | {LocalTrafficMark} " : "";
            rules.Add($"{HostRules.Proto(port.Protocol)} dport {port.Published.ToString(CultureInfo.InvariantCulture)} {keep}dnat ip addr . port to {Choice(backends.Service, addresses, target)}");
        }

        return rules;
    }

    /// <summary>
    /// Seed of the maglev rule's jhash. Fixed, because without one the kernel draws a random seed per rule, so every
    /// rewrite of the chain (a task coming or going) would move every client: the point of Maglev is that it does not.
    /// </summary>
    public const string HashSeed = "0x4d455348";

    /// <summary>
    /// The expression choosing a backend address and port: round robin (numgen) by default; with <c>--lb maglev</c> or
    /// <c>--affinity source-ip</c> the client's source address hashed (jhash) into a Maglev table of M buckets
    /// (<see cref="Balancing.MaglevTable"/>), so a client keeps its task and a task leaving moves only its own clients.
    /// </summary>
    internal static string Choice(ClusterService service, IReadOnlyList<string> addresses, string target)
    {
        if (service.LoadBalancing == LoadBalancing.Maglev || service.Affinity == Affinity.SourceIp)
        {
            var table = Balancing.MaglevTable.Build(addresses);
            var buckets = string.Join(", ", table.Entries.Select((backend, bucket) => $"{bucket.ToString(CultureInfo.InvariantCulture)} : {table.Backends[backend]} . {target}"));
            return $"jhash ip saddr mod {table.Size.ToString(CultureInfo.InvariantCulture)} seed {HashSeed} map {{ {buckets} }}";
        }

        var map = string.Join(", ", addresses.Select((ip, i) => $"{i.ToString(CultureInfo.InvariantCulture)} : {ip} . {target}"));
        return $"numgen inc mod {addresses.Count.ToString(CultureInfo.InvariantCulture)} map {{ {map} }}";
    }

    /// <summary>
    /// Round robin over the backends, keeping the port (east-west VIPs). With none, the packet is left alone: it is then delivered locally
    /// in the sandbox, where nothing listens, so TCP clients get an immediate reset instead of a timeout.
    /// </summary>
    internal static IReadOnlyList<string> ServiceRules(BackendSet backends)
    {
        if (backends.Addresses.Count == 0)
        {
            return [];
        }

        var map = string.Join(", ", backends.Addresses.Select((ip, i) => $"{i.ToString(CultureInfo.InvariantCulture)} : {ip}"));
        return [$"dnat to numgen inc mod {backends.Addresses.Count.ToString(CultureInfo.InvariantCulture)} map {{ {map} }}"];
    }

    internal static string Mark(int mark) => "0x" + mark.ToString("x8", CultureInfo.InvariantCulture);
}
