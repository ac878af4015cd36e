using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk steps 2-4 for the ipvs dataplane, in the ingress sandbox, as Docker programs them: mangle
/// PREROUTING marks each published port with its service's mark (and mangle INPUT the service's ingress VIP),
/// one IPVS fwmark service per published service load-balances round robin to the service's task ingress
/// addresses (Masq), and nat POSTROUTING SNATs what IPVS sends into the ingress network to the sandbox's own
/// ingress address so replies come back through it. Rules are written in iptables-save's canonical form, so
/// the planner sees no difference on the next pass.
/// </summary>
public static class IpvsSandboxRules
{
    /// <summary>mangle, jumped to from PREROUTING: published port → the service's mark.</summary>
    public const string MarkPorts = "MESH-INGRESS";

    /// <summary>mangle, jumped to from INPUT: the service's ingress VIP → its mark.</summary>
    public const string MarkVips = "MESH-INPUT";

    /// <summary>nat, jumped to from POSTROUTING: <c>-m ipvs --ipvs</c> → SNAT to the sandbox.</summary>
    public const string SourceNat = "MESH-POSTROUTING";

    public static IReadOnlyList<string> Tables { get; } = ["mangle", "nat"];

    /// <summary>Sysctls of the sandbox: IPVS keeps conntrack entries (needed by the SNAT), and connections to a removed real server are dropped at once.</summary>
    public static IReadOnlyList<(string Key, string Value)> Sysctls { get; } =
    [
        ("net.ipv4.vs.conntrack", "1"),
        ("net.ipv4.vs.expire_nodest_conn", "1"),
        ("net.ipv4.vs.expire_quiescent_template", "1"),
    ];

    /// <summary>
    /// Added to a service's mark for its <c>traffic=local</c> ports: their own fwmark service (this node's tasks only),
    /// and no SNAT. Service marks use the low 24 bits; the nftables dataplane uses the same bit the same way.
    /// </summary>
    public const uint LocalTrafficMark = 0x01000000;

    private static IEnumerable<ClusterService> Published(ClusterState state) =>
        state.Services.Where(s => IngressSandboxTable.MeshPorts(s).Any()).OrderBy(s => s.Name, StringComparer.Ordinal);

    private static bool HasLocalTraffic(ClusterService service) => IngressSandboxTable.MeshPorts(service).Any(p => p.Traffic == TrafficPolicy.Local);

    public static IptablesRuleset Rules(ClusterState state, string sandboxIngressAddress)
    {
        var ports = new List<string>();
        var vips = new List<string>();
        foreach (var service in Published(state))
        {
            var mark = Mark((uint)service.FirewallMark);
            foreach (var port in IngressSandboxTable.MeshPorts(service).OrderBy(p => p.Protocol).ThenBy(p => p.Published))
            {
                var proto = HostRules.Proto(port.Protocol);
                var portMark = port.Traffic == TrafficPolicy.Local ? Mark((uint)service.FirewallMark | LocalTrafficMark) : mark;
                ports.Add(string.Create(CultureInfo.InvariantCulture, $"-p {proto} -m {proto} --dport {port.Published} -j MARK --set-xmark {portMark}"));
            }

            if (service.Vips.TryGetValue(OverlayNetwork.IngressName, out var vip))
            {
                vips.Add($"-d {vip}/32 -j MARK --set-xmark {mark}");
            }
        }

        return new IptablesRuleset(
            [
                new IptablesChain("mangle", MarkPorts, ports),
                new IptablesChain("mangle", MarkVips, vips),
                new IptablesChain("nat", SourceNat,
                [
                    string.Create(CultureInfo.InvariantCulture, $"-m mark --mark 0x{LocalTrafficMark:x}/0x{LocalTrafficMark:x} -j RETURN"),
                    $"-d {OverlayNetwork.Ingress.Subnet} -m ipvs --ipvs -j SNAT --to-source {sandboxIngressAddress}",
                ]),
            ],
            [
                new IptablesJump("mangle", "PREROUTING", $"-j {MarkPorts}"),
                new IptablesJump("mangle", "INPUT", $"-j {MarkVips}"),
                new IptablesJump("nat", "POSTROUTING", $"-j {SourceNat}"),
            ]);
    }

    /// <summary>
    /// One fwmark service per published service, real servers = its running tasks' ingress addresses; and for a
    /// service with <c>traffic=local</c> ports, one more (its mark + <see cref="LocalTrafficMark"/>) with this node's
    /// tasks only. With none, IPVS answers the client with ICMP port unreachable: refused, as the nftables dataplane does.
    /// </summary>
    /// <param name="node">This node's name (null: no local tasks).</param>
    /// <param name="health">This node's health verdicts: an unhealthy task's real server stays at weight 0 (no new connections, its open ones go on).</param>
    public static IReadOnlyList<IpvsDesiredService> Services(ClusterState state, IpvsOptions options, string? node = null, HealthChecks.BackendHealth? health = null)
    {
        var tasks = BackendSet.RunningTasksByService(state);
        var result = new List<IpvsDesiredService>();
        foreach (var s in Published(state))
        {
            // Kept even when every port is traffic=local: the service's ingress VIP is marked with it.
            result.Add(IpvsDesiredService.For(s.Name, (uint)s.FirewallMark, BackendSet.For(tasks, s, OverlayNetwork.IngressName, health), options));

            if (HasLocalTraffic(s))
            {
                result.Add(IpvsDesiredService.For(s.Name + "/local", (uint)s.FirewallMark | LocalTrafficMark, BackendSet.ForNode(tasks, s, OverlayNetwork.IngressName, node, health), options));
            }
        }

        return result;
    }

    /// <summary>A mark as iptables-save prints <c>--set-xmark</c>: lowercase hex, full mask.</summary>
    public static string Mark(uint mark) => "0x" + mark.ToString("x", CultureInfo.InvariantCulture) + "/0xffffffff";
}

/// <summary>
/// East-west for the ipvs dataplane, inside a task's namespace (Docker's per-container IPVS): mangle OUTPUT marks
/// traffic to each vip-mode service's VIP on every user network the task is on, and an IPVS fwmark service per
/// (service, network) load-balances it to that service's task addresses on the same network.
/// </summary>
public static class IpvsTaskRules
{
    /// <summary>mangle, jumped to from OUTPUT: VIP → mark.</summary>
    public const string MarkVips = "MESH-VIP-OUTPUT";

    /// <summary>The service mark occupies the low 24 bits; the task's network index (0, 1, ...) the high 8.</summary>
    public const int NetworkShift = 24;

    public static IReadOnlyList<string> Tables { get; } = ["mangle"];

    public static IReadOnlyList<(string Key, string Value)> Sysctls { get; } =
    [
        ("net.ipv4.vs.conntrack", "1"),
        ("net.ipv4.vs.expire_nodest_conn", "1"),
    ];

    /// <summary>
    /// The mark of <paramref name="service"/> on the task's <paramref name="networkIndex"/>-th user network (sorted by
    /// name): the service's own mark on the first, so a one-network task uses exactly the marks Docker would.
    /// </summary>
    public static uint Mark(ClusterService service, int networkIndex)
    {
        if (service.FirewallMark is <= 0 or >= 1 << NetworkShift || networkIndex is < 0 or > 255)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"service '{service.Name}': mark {service.FirewallMark} on network #{networkIndex} does not fit the ipvs dataplane's east-west marks (24-bit service mark, 256 networks per task)"));
        }

        return (uint)service.FirewallMark | ((uint)networkIndex << NetworkShift);
    }

    /// <summary>The VIP services a task can reach, with their VIPs, in a stable order.</summary>
    public static IReadOnlyList<(IpvsDesiredService Service, string Vip)> Services(ClusterState state, ServiceTask task, IpvsOptions options) =>
        Services(state, task, options, BackendSet.RunningTasksByService(state));

    /// <param name="tasks">The state's <see cref="BackendSet.RunningTasksByService"/>, made once for all local tasks.</param>
    public static IReadOnlyList<(IpvsDesiredService Service, string Vip)> Services(ClusterState state, ServiceTask task, IpvsOptions options, ILookup<string, ServiceTask> tasks)
    {
        var result = new List<(IpvsDesiredService, string)>();
        var networks = task.Addresses.Keys.Where(n => n != OverlayNetwork.IngressName).Order(StringComparer.Ordinal).ToList();
        for (var i = 0; i < networks.Count; i++)
        {
            var network = networks[i];
            foreach (var service in state.Services.Where(s => s.Mode == ServiceMode.Vip && s.Vips.ContainsKey(network)).OrderBy(s => s.Name, StringComparer.Ordinal))
            {
                result.Add((IpvsDesiredService.For($"{service.Name}@{network}", Mark(service, i), BackendSet.For(tasks, service, network).Addresses, options), service.Vips[network]));
            }
        }

        return result;
    }

    public static IptablesRuleset Rules(IReadOnlyList<(IpvsDesiredService Service, string Vip)> services) => services.Count == 0
        ? IptablesRuleset.Empty
        : new IptablesRuleset(
            [new IptablesChain("mangle", MarkVips, services.Select(s => $"-d {s.Vip}/32 -j MARK --set-xmark {IpvsSandboxRules.Mark(s.Service.Service.FirewallMark)}").ToArray())],
            [new IptablesJump("mangle", "OUTPUT", $"-j {MarkVips}")]);
}
