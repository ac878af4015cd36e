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

        // Egress (docker_gwbridge's rules): what the tasks' gateway legs send out leaves masqueraded, and only its replies come back.
        var gatewaySubnet = GatewaySubnet(options);
        forward.Add($"-i {options.GatewayBridge} ! -o {options.GatewayBridge} -j ACCEPT");
        forward.Add($"-o {options.GatewayBridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");
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

    internal static string Proto(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? "udp" : "tcp";
}
