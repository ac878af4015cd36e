using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk step 1, on the node: DNAT every published port arriving for a local address into the
/// ingress sandbox's gateway leg; accept it in FORWARD; masquerade locally sourced traffic so that
/// <c>curl localhost:PORT</c> works with route_localnet.
/// </summary>
public static class HostRules
{
    public const string Ingress = "MESH-INGRESS";
    public const string Postrouting = "MESH-POSTROUTING";

    public static IReadOnlyList<string> Tables { get; } = ["filter", "nat"];

    public static IptablesRuleset Build(ClusterState state, NodeNetworkOptions options)
    {
        var ports = state.Services.SelectMany(s => s.Ports).OrderBy(p => p.Protocol).ThenBy(p => p.Published).ToList();
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

        dnat.Add("-j RETURN");
        forward.Add("-j RETURN");
        return new IptablesRuleset(
            [
                new IptablesChain("nat", Ingress, dnat),
                new IptablesChain("nat", Postrouting, [$"-o {options.GatewayBridge} -m addrtype --src-type LOCAL -j MASQUERADE"]),
                new IptablesChain("filter", Ingress, forward),
            ],
            [
                new IptablesJump("nat", "PREROUTING", $"-m addrtype --dst-type LOCAL -j {Ingress}"),
                new IptablesJump("nat", "OUTPUT", $"-m addrtype --dst-type LOCAL -j {Ingress}"),
                new IptablesJump("nat", "POSTROUTING", $"-j {Postrouting}"),
                new IptablesJump("filter", "FORWARD", $"-j {Ingress}"),
            ]);
    }

    internal static string Proto(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? "udp" : "tcp";
}
