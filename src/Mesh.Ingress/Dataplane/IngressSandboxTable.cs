using System.Globalization;
using Mesh.Discovery.Model;
using System.Net;
using System.Net.Sockets;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

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
        ArgumentNullException.ThrowIfNull(state);
        var snatTo = IPAddress.TryParse(sandboxIngressAddress, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork
            ? parsed
            : throw new ArgumentException($"sandbox ingress address '{sandboxIngressAddress}' is not an IPv4 address", nameof(sandboxIngressAddress));
        var published = new List<NftElement>();
        var dispatch = new List<NftElement>();
        var chains = new List<NftChain>();
        var tasks = BackendSet.RunningTasksByService(state);
        foreach (var service in state.Services.Where(s => MeshPorts(s).Any()).OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            var mark = Mark(service.FirewallMark);
            var chain = ServiceChainPrefix + service.Name.ToLowerInvariant();
            foreach (var p in MeshPorts(service))
            {
                published.Add(new NftElement(
                    $"{HostRules.Proto(p.Protocol)} . {p.Published.ToString(CultureInfo.InvariantCulture)} : {mark}",
                    new SetElement(NftData.Concat(NftData.U8(ProtoNumber(p.Protocol)), NftData.Be16(Port(p.Published))), NftData.U32((uint)service.FirewallMark))));
            }

            dispatch.Add(new NftElement($"{mark} : goto {chain}", new SetElement(NftData.U32((uint)service.FirewallMark), Verdict: Verdict.Goto(chain))));
            chains.Add(new NftChain(chain, PublishedPortRules(BackendSet.For(tasks, service, OverlayNetwork.IngressName, health), BackendSet.ForNode(tasks, service, OverlayNetwork.IngressName, node, health))));
        }

        return new NftDesiredTable(
            Ip,
            Name,
            [
                new NftMap("map published-ports { type inet_proto . inet_service : mark; }",
                    new Set(Ip, Name, "published-ports", SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService), SetFlags.Map) { DataType = SetDataType.Mark, UserData = PublishedPortsUserData },
                    published),
                new NftMap("map service-chains { type mark : verdict; }",
                    new Set(Ip, Name, "service-chains", SetDataType.Mark, SetFlags.Map) { DataType = SetDataType.Verdict, UserData = ServiceChainsUserData },
                    dispatch),
            ],
            [MarkPublished(), Dispatch(), SourceNat(snatTo)],
            chains,
            ServiceChainPrefix);
    }

    private const Family Ip = Mesh.Ipvs.Netlink.NfTables.Family.Ip;

    // nft's own set userdata (key/data byte order, for nft to print the elements with; the kernel keeps it opaque), as
    // nft 1.0.6 writes it for these declarations: without it `nft list` (and mesh trace) would misread host-order marks.
    private static readonly NftData PublishedPortsUserData = new(Convert.FromHexString("000400000000010401000000030800040d0000000100060400000000"));
    private static readonly NftData ServiceChainsUserData = new(Convert.FromHexString("000401000000010400000000060400000000"));
    private static readonly NftData ProtoSetUserData = new(Convert.FromHexString("000401000000030e0004090000000106000410000000"));
    private static readonly NftData DnatPortMapUserData = new(Convert.FromHexString("000401000000010400000000060400000000"));
    private static readonly NftData DnatAddressMapUserData = new(Convert.FromHexString("000401000000010402000000060400000000"));

    private const byte RtnLocal = 2;
    private const uint CtStatusDstNat = 0x20; // IPS_DST_NAT

    private static NftChain MarkPublished()
    {
        var gateway = NodeNetworkOptions.SandboxGatewayInterface;
        var protocols = new Set(Ip, Name, "__set%d", SetDataType.InetProto, SetFlags.Anonymous | SetFlags.Constant) { Size = 2, UserData = ProtoSetUserData };
        return new NftChain("mark-published", [new NftRule(
            $"iifname \"{gateway}\" fib daddr type local meta l4proto {{ tcp, udp }} meta mark set meta l4proto . th dport map @published-ports",
            [
                new Meta(MetaKey.IifName),
                new Cmp(CmpOp.Eq, NftData.InterfaceName(gateway)),
                new Fib(FibResult.AddressType, FibFlags.DestinationAddress),
                new Cmp(CmpOp.Eq, NftData.U32(RtnLocal)),
                new Meta(MetaKey.L4Proto),
                new Lookup("__set%d"),
                new Meta(MetaKey.L4Proto),
                new Payload(PayloadBase.Transport, 2, 2, Registers.R32(1)),
                new Lookup("published-ports", Registers.R1, Registers.R1),
                new MetaSet(MetaKey.Mark),
            ],
            [new NftAnonymousSet(protocols, [new SetElement(NftData.U8(6)), new SetElement(NftData.U8(17))])])],
            new BaseChain("filter", Hook.Prerouting, BaseChain.PriorityMangle));
    }

    private static NftChain Dispatch() =>
        new("dispatch", [new NftRule("meta mark vmap @service-chains", [new Meta(MetaKey.Mark), new Lookup("service-chains", Registers.R1, Registers.Verdict)])],
            new BaseChain("nat", Hook.Prerouting, BaseChain.PriorityDstNat));

    private static NftChain SourceNat(IPAddress snatTo)
    {
        var ingress = NodeNetworkOptions.SandboxIngressInterface;
        var subnet = OverlayNetwork.Ingress.Subnet;
        var (prefix, prefixLength) = (IPAddress.Parse(subnet.Split('/')[0]), int.Parse(subnet.Split('/')[1], CultureInfo.InvariantCulture));
        if (prefixLength % 8 != 0)
        {
            throw new InvalidOperationException($"the ingress subnet {subnet} is not on a byte boundary, which the sandbox's source-nat rule assumes");
        }

        return new NftChain("source-nat",
        [
            new NftRule($"meta mark & {LocalTrafficMark} != 0 return",
            [
                new Meta(MetaKey.Mark),
                new Bitwise(4, NftData.U32(LocalTrafficBit), NftData.U32(0)),
                new Cmp(CmpOp.Neq, NftData.U32(0)),
                new VerdictExpression(Verdict.Return),
            ]),
            new NftRule($"oifname \"{ingress}\" ip daddr {subnet} ct status dnat snat to {snatTo}",
            [
                new Meta(MetaKey.OifName),
                new Cmp(CmpOp.Eq, NftData.InterfaceName(ingress)),
                new Payload(PayloadBase.Network, 16, (uint)prefixLength / 8),
                new Cmp(CmpOp.Eq, new NftData(prefix.GetAddressBytes().AsSpan(0, prefixLength / 8))),
                new Ct(CtKey.Status),
                new Bitwise(4, NftData.U32(CtStatusDstNat), NftData.U32(0)),
                new Cmp(CmpOp.Neq, NftData.U32(0)),
                new Immediate(NftData.Ipv4(snatTo)),
                new Nat(NatType.Snat, Ip),
            ]),
        ],
        new BaseChain("nat", Hook.Postrouting, BaseChain.PrioritySrcNat));
    }

    private static byte ProtoNumber(TransportProtocol protocol) => protocol == TransportProtocol.Udp ? (byte)17 : (byte)6;

    private static ushort Port(int port) => checked((ushort)port);

    /// <summary>
    /// Set (besides the service's mark) on the first packet of a <c>traffic=local</c> connection, so that source-nat
    /// leaves it alone and the task sees the client. Service marks use the low 24 bits (<see cref="Limits.MaxFirewallMark"/>).
    /// </summary>
    public const string LocalTrafficMark = "0x01000000";

    private const uint LocalTrafficBit = 0x01000000;

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
    internal static IReadOnlyList<NftRule> PublishedPortRules(BackendSet backends, BackendSet? local = null)
    {
        var rules = new List<NftRule>();
        foreach (var port in MeshPorts(backends.Service).OrderBy(p => p.Protocol).ThenBy(p => p.Published))
        {
            var isLocal = port.Traffic == TrafficPolicy.Local;
            var addresses = isLocal ? local?.Addresses ?? [] : backends.Addresses;
            if (addresses.Count == 0)
            {
                continue;
            }

            var keep = isLocal ? $"meta mark set meta mark | {LocalTrafficMark} " : "";
            var (choiceText, choice, map) = Choice(backends.Service, addresses, Port(port.Target));
            List<Expression> expressions =
            [
                new Meta(MetaKey.L4Proto),
                new Cmp(CmpOp.Eq, NftData.U8(ProtoNumber(port.Protocol))),
                new Payload(PayloadBase.Transport, 2, 2),
                new Cmp(CmpOp.Eq, NftData.Be16(Port(port.Published))),
            ];
            if (isLocal)
            {
                expressions.AddRange([new Meta(MetaKey.Mark), new Bitwise(4, NftData.U32(~LocalTrafficBit), NftData.U32(LocalTrafficBit)), new MetaSet(MetaKey.Mark)]);
            }

            expressions.AddRange(choice);
            expressions.Add(new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R32(1)));
            rules.Add(new NftRule(
                $"{HostRules.Proto(port.Protocol)} dport {port.Published.ToString(CultureInfo.InvariantCulture)} {keep}dnat ip addr . port to {choiceText}",
                expressions,
                [map]));
        }

        return rules;
    }

    /// <summary>
    /// Seed of the maglev rule's jhash. Fixed, because without one the kernel draws a random seed per rule, so every
    /// rewrite of the chain (a task coming or going) would move every client: the point of Maglev is that it does not.
    /// </summary>
    public const string HashSeed = "0x4d455348";

    private const uint HashSeedValue = 0x4d455348;

    /// <summary>
    /// The expressions choosing a backend address and port into registers 1 and 9: round robin (numgen) by default; with
    /// <c>--lb maglev</c> or <c>--affinity source-ip</c> the client's source address hashed (jhash) into a Maglev table of
    /// M buckets (<see cref="Balancing.MaglevTable"/>), so a client keeps its task and a task leaving moves only its own
    /// clients. Returned with its nft text and the anonymous map it looks up.
    /// </summary>
    internal static (string Text, IReadOnlyList<Expression> Expressions, NftAnonymousSet Map) Choice(ClusterService service, IReadOnlyList<string> addresses, ushort target)
    {
        var targetText = target.ToString(CultureInfo.InvariantCulture);
        if (service.LoadBalancing == LoadBalancing.Maglev || service.Affinity == Affinity.SourceIp)
        {
            var table = Balancing.MaglevTable.Build(addresses);
            var buckets = string.Join(", ", table.Entries.Select((backend, bucket) => $"{bucket.ToString(CultureInfo.InvariantCulture)} : {table.Backends[backend]} . {targetText}"));
            return (
                $"jhash ip saddr mod {table.Size.ToString(CultureInfo.InvariantCulture)} seed {HashSeed} map {{ {buckets} }}",
                [
                    new Payload(PayloadBase.Network, 12, 4, Registers.R2),
                    new JHash(Registers.R2, 4, (uint)table.Size, HashSeedValue),
                    new Lookup("__map%d", Registers.R1, Registers.R1),
                ],
                DnatMap(table.Entries.Select(backend => NftData.Concat(NftData.Ipv4(table.Backends[backend]), NftData.Be16(target))).ToList(), SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService), DnatPortMapUserData));
        }

        var map = string.Join(", ", addresses.Select((ip, i) => $"{i.ToString(CultureInfo.InvariantCulture)} : {ip} . {targetText}"));
        return (
            $"numgen inc mod {addresses.Count.ToString(CultureInfo.InvariantCulture)} map {{ {map} }}",
            [new Numgen((uint)addresses.Count), new Lookup("__map%d", Registers.R1, Registers.R1)],
            DnatMap(addresses.Select(a => NftData.Concat(NftData.Ipv4(a), NftData.Be16(target))).ToList(), SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService), DnatPortMapUserData));
    }

    /// <summary>The anonymous constant map 0..N-1 → backend that numgen or jhash index (nft's <c>map { 0 : ..., 1 : ... }</c>).</summary>
    private static NftAnonymousSet DnatMap(IReadOnlyList<NftData> backends, SetDataType dataType, NftData userData) =>
        new(new Set(Ip, Name, "__map%d", SetDataType.Integer32, SetFlags.Anonymous | SetFlags.Constant | SetFlags.Map)
            {
                DataType = dataType,
                Size = (uint)backends.Count,
                UserData = userData,
            },
            backends.Select((b, i) => new SetElement(NftData.U32((uint)i), b)).ToList());

    /// <summary>
    /// Round robin over the backends, keeping the port (east-west VIPs). With none, the packet is left alone: it is then delivered locally
    /// in the sandbox, where nothing listens, so TCP clients get an immediate reset instead of a timeout.
    /// </summary>
    internal static IReadOnlyList<NftRule> ServiceRules(BackendSet backends)
    {
        if (backends.Addresses.Count == 0)
        {
            return [];
        }

        var map = string.Join(", ", backends.Addresses.Select((ip, i) => $"{i.ToString(CultureInfo.InvariantCulture)} : {ip}"));
        return [new NftRule(
            $"dnat to numgen inc mod {backends.Addresses.Count.ToString(CultureInfo.InvariantCulture)} map {{ {map} }}",
            [new Numgen((uint)backends.Addresses.Count), new Lookup("__map%d", Registers.R1, Registers.R1), new Nat(NatType.Dnat, Ip, Registers.R1)],
            [DnatMap(backends.Addresses.Select(NftData.Ipv4).ToList(), SetDataType.Ipv4Address, DnatAddressMapUserData)])];
    }

    internal static string Mark(int mark) => "0x" + mark.ToString("x8", CultureInfo.InvariantCulture);
}
