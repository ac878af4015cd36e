using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk step 1, on the node: DNAT every published port arriving for a local address into the
/// ingress sandbox's gateway leg; accept it in FORWARD; masquerade locally sourced traffic so that
/// <c>curl localhost:PORT</c> works with route_localnet; masquerade what the tasks' gateway legs send out (egress).
/// </summary>
public static class HostRules
{
    public const string Ingress = "MESH-INGRESS";
    public const string Postrouting = "MESH-POSTROUTING";

    public static IReadOnlyList<string> Tables { get; } = ["filter", "nat"];

    /// <param name="node">This node's name: a <c>mode=host</c> port is published here only when the node runs one of
    /// its tasks, DNATed straight to them (none when null).</param>
    /// <param name="health">This node's health verdicts: an unhealthy local task gets no new connections (<see cref="BackendSet.Of"/>).</param>
    public static IptablesRuleset Build(ClusterState state, NodeNetworkOptions options, string? node = null, HealthChecks.BackendHealth? health = null)
    {
        var ports = state.Services.SelectMany(s => IngressSandboxTable.SandboxPorts(s)).OrderBy(p => p.Protocol).ThenBy(p => p.Published).ToList();
        var dnat = new List<string>();
        var forward = new List<string>();
        foreach (var port in ports)
        {
            var proto = Proto(port.Protocol);
            var published = port.Published.ToString(CultureInfo.InvariantCulture);
            dnat.Add($"-p {proto} -m {proto} --dport {published} -j DNAT --to-destination {options.SandboxGatewayAddress}:{published}");
            forward.Add($"-p {proto} -m {proto} --dport {published} -j ACCEPT");
            forward.Add($"-p {proto} -m {proto} --sport {published} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        }

        // Egress (docker_gwbridge's rules): what the tasks' gateway legs send out leaves masqueraded, and only its replies come back.
        var gatewaySubnet = GatewaySubnet(options);
        forward.Add($"-i {options.GatewayBridge} ! -o {options.GatewayBridge} -j ACCEPT");
        forward.Add($"-o {options.GatewayBridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
        var (hostDnat, hostForward) = HostModeRules(state, node, health);
        dnat.AddRange(hostDnat);
        forward.AddRange(hostForward);
        dnat.Add("-j RETURN");
        forward.Add("-j RETURN");
        return new IptablesRuleset(
            [
                new IptablesChain("nat", Ingress, dnat),
                new IptablesChain("nat", Postrouting,
                [
                    $"-o {options.GatewayBridge} -m addrtype --src-type LOCAL -j MASQUERADE",
                    $"-s {gatewaySubnet} ! -o {options.GatewayBridge} -j MASQUERADE",
                ]),
                new IptablesChain("filter", Ingress, forward),
            ],
            [
                new IptablesJump("nat", "PREROUTING", $"-m addrtype --dst-type LOCAL -j {Ingress}"),
                new IptablesJump("nat", "OUTPUT", $"-m addrtype --dst-type LOCAL -j {Ingress}"),
                new IptablesJump("nat", "POSTROUTING", $"-j {Postrouting}"),
                new IptablesJump("filter", "FORWARD", $"-j {Ingress}"),
            ]);
    }

    private static string GatewaySubnet(NodeNetworkOptions options)
    {
        var address = Cidr.ToUInt32(System.Net.IPAddress.Parse(options.GatewayAddress));
        var mask = options.GatewayPrefixLength == 0 ? 0 : uint.MaxValue << (32 - options.GatewayPrefixLength);
        return new Cidr(address & mask, options.GatewayPrefixLength).ToString();
    }

    /// <summary>
    /// <c>mode=host</c>: the published port DNATed straight to this node's own tasks (their ingress address and the
    /// target port; the node routes the ingress subnet through the sandbox's gateway leg, see
    /// <see cref="IngressSandbox"/>), spread by connection with <c>statistic nth</c> (each rule takes 1/k of what reaches
    /// it, as kube-proxy does). A node without a task has no rule: nothing listens, the client is refused. FORWARD
    /// accepts both directions by the connection's original port, since the packets carry the target port.
    /// </summary>
    internal static (List<string> Dnat, List<string> Forward) HostModeRules(ClusterState state, string? node, HealthChecks.BackendHealth? health = null)
    {
        var dnat = new List<string>();
        var forward = new List<string>();
        var tasks = BackendSet.RunningTasksByService(state);
        var ports = state.Services
            .SelectMany(s => s.Ports.Where(p => p.Mode == PublishMode.Host).Select(p => (Port: p, Backends: BackendSet.ForNode(tasks, s, OverlayNetwork.IngressName, node, health).Addresses)))
            .Where(x => x.Backends.Count > 0)
            .OrderBy(x => x.Port.Protocol).ThenBy(x => x.Port.Published);
        foreach (var (port, backends) in ports)
        {
            var proto = Proto(port.Protocol);
            for (var i = 0; i < backends.Count; i++)
            {
                var nth = i < backends.Count - 1 ? string.Create(CultureInfo.InvariantCulture, $"-m statistic --mode nth --every {backends.Count - i} --packet 0 ") : "";
                dnat.Add(string.Create(CultureInfo.InvariantCulture, $"-p {proto} -m {proto} --dport {port.Published} {nth}-j DNAT --to-destination {backends[i]}:{port.Target}"));
            }

            forward.Add(string.Create(CultureInfo.InvariantCulture, $"-p {proto} -m conntrack --ctstate DNAT --ctorigdstport {port.Published} -j ACCEPT"));
        }

        return (dnat, forward);
    }

    internal static string Proto(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? "udp" : "tcp";
}
