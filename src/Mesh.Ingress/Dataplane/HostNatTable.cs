using System.Globalization;
using System.Net;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk step 1 on the nftables dataplane: the node's NAT as Mesh's own nf_tables table <c>ip mesh-host</c> (the
/// ipvs dataplane keeps <see cref="HostRules"/> in iptables). Base chains at the nat hooks' usual priorities (dstnat for
/// prerouting/output, srcnat for postrouting) send locally addressed packets to the <c>ingress</c> chain, which DNATs every
/// published port into the sandbox's gateway leg (and <c>mode=host</c> ports straight to this node's tasks, round robin);
/// postrouting masquerades locally sourced traffic to the gateway bridge and the tasks' egress. Only the ingress chain
/// changes with services, so a published port is one flush-and-refill of one chain in one batch.
/// The FORWARD accepts are not here: an accept in this table cannot override a DROP elsewhere (see <see cref="ForwardPolicy"/>).
/// </summary>
public static class HostNatTable
{
    public const string Name = "mesh-host";
    public const string IngressChain = "ingress";

    public static NftDesiredTable Build(ClusterState state, NodeNetworkOptions options, string? node = null, HealthChecks.BackendHealth? health = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(options);
        var sandbox = IPAddress.Parse(options.SandboxGatewayAddress);
        var rules = new List<NftRule>();

        // The expressions every port's rule has in common are one object each (they are immutable): the table is kept
        // between passes, and at 10,000 published ports a copy per rule was ~2.5 MB of the daemon's heap.
        var toSandbox = new Immediate(NftData.Ipv4(sandbox));
        foreach (var port in state.Services.SelectMany(IngressSandboxTable.SandboxPorts).OrderBy(p => p.Protocol).ThenBy(p => p.Published))
        {
            var published = checked((ushort)port.Published);
            rules.Add(new NftRule(
                string.Create(CultureInfo.InvariantCulture, $"{HostRules.Proto(port.Protocol)} dport {port.Published} dnat to {sandbox}:{port.Published}"),
                [.. PortMatch(port.Protocol, published), toSandbox, new Immediate(NftData.Be16(published), Registers.R2), DnatToSandbox]));
        }

        rules.AddRange(HostModeRules(state, node, health));
        return new NftDesiredTable(
            Ip,
            Name,
            [],
            [ToIngress("prerouting", Hook.Prerouting), ToIngress("output", Hook.Output), Postrouting(options)],
            [new NftChain(IngressChain, rules)]);
    }

    /// <summary><c>mode=host</c>: DNAT straight to this node's own tasks (target port), round robin by connection (numgen).</summary>
    private static IEnumerable<NftRule> HostModeRules(ClusterState state, string? node, HealthChecks.BackendHealth? health)
    {
        var tasks = BackendSet.RunningTasksByService(state);
        var ports = state.Services
            .SelectMany(s => s.Ports.Where(p => p.Mode == PublishMode.Host).Select(p => (Port: p, Backends: BackendSet.ForNode(tasks, s, OverlayNetwork.IngressName, node, health).Addresses)))
            .Where(x => x.Backends.Count > 0)
            .OrderBy(x => x.Port.Protocol).ThenBy(x => x.Port.Published);
        foreach (var (port, backends) in ports)
        {
            var target = checked((ushort)port.Target);
            var map = string.Join(", ", backends.Select((ip, i) => string.Create(CultureInfo.InvariantCulture, $"{i} : {ip} . {port.Target}")));
            var set = new Set(Ip, Name, "__map%d", SetDataType.Integer32, SetFlags.Anonymous | SetFlags.Constant | SetFlags.Map)
            {
                DataType = SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService),
                Size = (uint)backends.Count,
                UserData = DnatPortMapUserData,
            };
            yield return new NftRule(
                string.Create(CultureInfo.InvariantCulture, $"{HostRules.Proto(port.Protocol)} dport {port.Published} dnat ip addr . port to numgen inc mod {backends.Count} map {{ {map} }}"),
                [.. PortMatch(port.Protocol, checked((ushort)port.Published)), new Numgen((uint)backends.Count), new Lookup("__map%d", Registers.R1, Registers.R1), new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R32(1))],
                [new NftAnonymousSet(set, backends.Select((b, i) => new SetElement(NftData.U32((uint)i), NftData.Concat(NftData.Ipv4(b), NftData.Be16(target)))).ToList())]);
        }
    }

    private const Family Ip = Family.Ip;
    private const byte RtnLocal = 2;

    // nft 1.0.6's userdata for an anonymous `map { 0 : ip . port }` (what nft prints the elements with), as the sandbox's.
    private static readonly NftData DnatPortMapUserData = new(Convert.FromHexString("000401000000010400000000060400000000"));

    private static readonly Nat DnatToSandbox = new(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R2);
    private static readonly Meta L4Proto = new(MetaKey.L4Proto);
    private static readonly Cmp IsTcp = new(CmpOp.Eq, NftData.U8(6));
    private static readonly Cmp IsUdp = new(CmpOp.Eq, NftData.U8(17));
    private static readonly Payload DestinationPort = new(PayloadBase.Transport, 2, 2);

    /// <summary><c>tcp dport PORT</c>; all but the port's comparison shared objects (immutable), as rules kept by the thousand hold them.</summary>
    internal static Expression[] PortMatch(TransportProtocol protocol, ushort port) =>
        [L4Proto, protocol == TransportProtocol.Udp ? IsUdp : IsTcp, DestinationPort, new Cmp(CmpOp.Eq, NftData.Be16(port))];

    /// <summary>As iptables' <c>-m addrtype --dst-type LOCAL -j MESH-INGRESS</c>: only what is addressed to this node.</summary>
    private static NftChain ToIngress(string name, Hook hook) => new(
        name,
        [new NftRule($"fib daddr type local jump {IngressChain}",
            [new Fib(FibResult.AddressType, FibFlags.DestinationAddress), new Cmp(CmpOp.Eq, NftData.U32(RtnLocal)), new VerdictExpression(Verdict.Jump(IngressChain))])],
        new BaseChain("nat", hook, BaseChain.PriorityDstNat));

    private static NftChain Postrouting(NodeNetworkOptions options)
    {
        var bridge = options.GatewayBridge;
        var prefixLength = options.GatewayPrefixLength;
        var address = Cidr.ToUInt32(IPAddress.Parse(options.GatewayAddress));
        var mask = prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);
        var subnet = new Cidr(address & mask, prefixLength);
        return new NftChain(
            "postrouting",
            [
                // curl localhost:PORT: DNATed to the sandbox with a local source, which the sandbox cannot answer.
                new NftRule($"oifname \"{bridge}\" fib saddr type local masquerade",
                [
                    new Meta(MetaKey.OifName), new Cmp(CmpOp.Eq, NftData.InterfaceName(bridge)),
                    new Fib(FibResult.AddressType, FibFlags.SourceAddress), new Cmp(CmpOp.Eq, NftData.U32(RtnLocal)),
                    new Masquerade(),
                ]),
                // Egress (docker_gwbridge's rule): what the tasks' gateway legs send out leaves masqueraded.
                new NftRule($"ip saddr {subnet} oifname != \"{bridge}\" masquerade",
                [
                    new Payload(PayloadBase.Network, 12, 4),
                    new Bitwise(4, NftData.Be32(mask), NftData.Be32(0)),
                    new Cmp(CmpOp.Eq, NftData.Be32(address & mask)),
                    new Meta(MetaKey.OifName), new Cmp(CmpOp.Neq, NftData.InterfaceName(bridge)),
                    new Masquerade(),
                ]),
            ],
            new BaseChain("nat", Hook.Postrouting, BaseChain.PrioritySrcNat));
    }
}
