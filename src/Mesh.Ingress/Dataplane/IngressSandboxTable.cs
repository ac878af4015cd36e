using System.Globalization;
using Mesh.Discovery.Model;
using System.Net;
using System.Net.Sockets;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Packet walk steps 2-4 for the nftables dataplane, in the ingress sandbox: mark by published protocol/port (one map
/// lookup), dispatch by mark, protocol and port (one verdict-map lookup) to a shared picking chain, which DNATs to a task
/// address and the target port looked up in one map by (protocol . port . slot), the slot drawn by numgen (round robin)
/// or by jhash of the client's address over a Maglev table (<see cref="PickChains"/>), and SNAT to the sandbox's ingress
/// address so replies come back through it. Per service there are only map elements, no chain: the kernel validates
/// chains on every commit that touches them (seconds at 10,000), while elements cost microseconds. The picking chains
/// are one per balancing mode and modulus (tasks per port, or Maglev table size), a handful whatever the number of
/// services. Lookups stay O(1). DNATing to the target port directly (where IPVS keeps the published port and the task
/// REDIRECTs it) saves a NAT step in the task and means a new task is reachable as soon as any node routes to it.
/// </summary>
public static partial class IngressSandboxTable
{
    public const string Family = "ip";
    public const string Name = "mesh";

    /// <summary>The shared picking chains' prefix: <c>pick-rr-N</c>, <c>pick-rr-local-N</c>, <c>pick-maglev-M</c>, <c>pick-maglev-local-M</c>.</summary>
    public const string PickChainPrefix = "pick-";

    public const string PortChainsMap = "port-chains";
    public const string BackendsMap = "backends";
    public const string MaglevMap = "maglev";

    /// <param name="node">This node's name: a <c>traffic=local</c> port goes to its tasks only (none when null).</param>
    /// <param name="health">This node's health verdicts: unhealthy tasks are left out (<see cref="BackendSet.Of"/>).</param>
    public static NftDesiredTable Build(ClusterState state, string sandboxIngressAddress, string? node = null, HealthChecks.BackendHealth? health = null) =>
        new Builder().Build(state, sandboxIngressAddress, node, health);

    /// <summary>One service's elements of each map (a group per map, keyed by its name) and the picking chains they go to.</summary>
    private sealed record ServicePart(
        IReadOnlyList<ServiceTask> Tasks, ServiceInputs Inputs, NftElementGroup Published, NftElementGroup Dispatch, NftElementGroup Backends, NftElementGroup Maglev, IReadOnlyList<string> Chains);

    /// <summary>Everything a service's elements depend on: equal inputs, equal elements.</summary>
    private sealed record ServiceInputs(ClusterService Service, IReadOnlyList<PublishedPort> Ports, IReadOnlyList<string> All, IReadOnlyList<string> Local)
    {
        public bool SameAs(ServiceInputs other) =>
            Service.Name == other.Service.Name && Service.FirewallMark == other.Service.FirewallMark
            && Service.LoadBalancing == other.Service.LoadBalancing && Service.Affinity == other.Service.Affinity
            && Ports.SequenceEqual(other.Ports) && All.SequenceEqual(other.All, StringComparer.Ordinal) && Local.SequenceEqual(other.Local, StringComparer.Ordinal);
    }

    /// <summary>The service's inputs from its tasks (all states, as the cluster state lists them): the running ones by name, as <see cref="BackendSet.RunningTasksByService"/> orders them.</summary>
    private static ServiceInputs InputsOf(IReadOnlyList<ServiceTask> tasks, ClusterService service, string? node, HealthChecks.BackendHealth? health)
    {
        var running = tasks.Where(t => t.State == TaskState.Running).OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        return new(service,
            MeshPorts(service).OrderBy(p => p.Protocol).ThenBy(p => p.Published).ToArray(),
            BackendSet.Of(service, running, OverlayNetwork.IngressName, health).Addresses,
            BackendSet.Of(service, node is null ? [] : running.Where(t => t.Node == node), OverlayNetwork.IngressName, health).Addresses);
    }

    private static ServicePart PartOf(IReadOnlyList<ServiceTask> tasks, ServiceInputs inputs)
    {
        var service = inputs.Service;
        var published = new List<NftElement>();
        var dispatch = new List<NftElement>();
        var backends = new List<NftElement>();
        var maglev = new List<NftElement>();
        var chains = new List<string>();
        foreach (var p in inputs.Ports)
        {
            var protoPort = NftData.Concat(NftData.U8(ProtoNumber(p.Protocol)), NftData.Be16(Port(p.Published)));
            published.Add(new NftElement(new SetElement(protoPort, NftData.U32((uint)service.FirewallMark)), ElementText.Published));

            // With no backend the packet is left alone: it is then delivered locally in the sandbox, where nothing
            // listens, so TCP clients get an immediate reset instead of a timeout (what a node without a local task must do).
            var isLocal = p.Traffic == TrafficPolicy.Local;
            var addresses = isLocal ? inputs.Local : inputs.All;
            if (addresses.Count == 0)
            {
                continue;
            }

            var target = Port(p.Target);
            string chain;
            if (service.LoadBalancing == LoadBalancing.Maglev || service.Affinity == Affinity.SourceIp)
            {
                var table = Balancing.MaglevTable.Build(addresses);
                chain = PickChain(Maglev, isLocal, table.Size);
                for (var bucket = 0; bucket < table.Entries.Count; bucket++)
                {
                    var address = table.Backends[table.Entries[bucket]];
                    maglev.Add(new NftElement(
                        new SetElement(NftData.Concat(protoPort, NftData.U32((uint)bucket)), NftData.Concat(NftData.Ipv4(address), NftData.Be16(target))), ElementText.Backend));
                }
            }
            else
            {
                chain = PickChain(RoundRobin, isLocal, addresses.Count);
                for (var slot = 0; slot < addresses.Count; slot++)
                {
                    backends.Add(new NftElement(
                        new SetElement(NftData.Concat(protoPort, NftData.U32((uint)slot)), NftData.Concat(NftData.Ipv4(addresses[slot]), NftData.Be16(target))), ElementText.Backend));
                }
            }

            chains.Add(chain);
            dispatch.Add(new NftElement(new SetElement(NftData.Concat(NftData.U32((uint)service.FirewallMark), protoPort), Verdict: Verdict.Goto(chain)), ElementText.Dispatch));
        }

        var key = service.Name;
        return new ServicePart(tasks, inputs, new(key, Exact(published)), new(key, Exact(dispatch)), new(key, Exact(backends)), new(key, Exact(maglev)), chains);
    }

    /// <summary>A group's elements as an array of their number (the list's slack and the list object gone; an empty one shared): the groups are kept between passes, 40,000 of them at 10,000 services.</summary>
    private static NftElement[] Exact(List<NftElement> elements) => elements.Count == 0 ? [] : [.. elements];

    /// <summary>The table of the services' parts (in the services' order by name) and the picking chains they go to.</summary>
    private static NftDesiredTable TableOf(IReadOnlyList<ServicePart> parts, IEnumerable<string> chains, IPAddress snatTo)
    {
        var (published, dispatch, backends, maglev) = (new NftElementGroup[parts.Count], new NftElementGroup[parts.Count], new NftElementGroup[parts.Count], new NftElementGroup[parts.Count]);
        for (var i = 0; i < parts.Count; i++)
        {
            (published[i], dispatch[i], backends[i], maglev[i]) = (parts[i].Published, parts[i].Dispatch, parts[i].Backends, parts[i].Maglev);
        }

        return new NftDesiredTable(
            Ip,
            Name,
            [
                Grouped("map published-ports { type inet_proto . inet_service : mark; }",
                    new Set(Ip, Name, "published-ports", SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService), SetFlags.Map) { DataType = SetDataType.Mark, UserData = PublishedPortsUserData },
                    published),
                Grouped($"map {PortChainsMap} {{ type mark . inet_proto . inet_service : verdict; }}",
                    new Set(Ip, Name, PortChainsMap, SetDataType.Concat(SetDataType.Mark, SetDataType.InetProto, SetDataType.InetService), SetFlags.Map) { DataType = SetDataType.Verdict, UserData = PortChainsUserData },
                    dispatch),
                Grouped($"map {BackendsMap} {{ typeof meta l4proto . th dport . numgen inc mod 1 : ip daddr . th dport; }}",
                    new Set(Ip, Name, BackendsMap, BackendKey, SetFlags.Map) { DataType = BackendData, UserData = BackendsUserData },
                    backends) with { Slotted = true },
                // Declared by numgen too (the key's types are the same): nft 1.0.6 crashes printing a map declared by jhash.
                Grouped($"map {MaglevMap} {{ typeof meta l4proto . th dport . numgen inc mod 1 : ip daddr . th dport; }}",
                    new Set(Ip, Name, MaglevMap, BackendKey, SetFlags.Map) { DataType = BackendData, UserData = BackendsUserData },
                    maglev),
            ],
            [MarkPublished(), Dispatch(), SourceNat(snatTo)],
            chains.Order(StringComparer.Ordinal).Select(PickChainOf).ToList());
    }

    /// <summary>As <see cref="NftMap.Grouped"/>, the flat list put together only when read (<see cref="GroupedElements"/>).</summary>
    private static NftMap Grouped(string declaration, Set set, IReadOnlyList<NftElementGroup> groups) =>
        new(declaration, set, new GroupedElements(groups)) { Groups = groups };

    /// <summary>The sandbox's source address for the SNAT rule, checked.</summary>
    private static IPAddress SnatAddress(string sandboxIngressAddress) =>
        IPAddress.TryParse(sandboxIngressAddress, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork
            ? parsed
            : throw new ArgumentException($"sandbox ingress address '{sandboxIngressAddress}' is not an IPv4 address", nameof(sandboxIngressAddress));

    private const Family Ip = Mesh.Ipvs.Netlink.NfTables.Family.Ip;

    private const string RoundRobin = "rr";
    private const string Maglev = "maglev";

    /// <summary>(protocol . port . slot or bucket): the slot is numgen's or jhash's result, a host-order u32.</summary>
    private static readonly SetDataType BackendKey = SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService, SetDataType.Integer32);

    private static readonly SetDataType BackendData = SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService);

    // nft's own set userdata (key/data byte order and typeof expressions, for nft to print the elements with; the kernel
    // keeps it opaque), as nft 1.0.6 writes it for these declarations: without it `nft list` (and mesh trace) would
    // misread host-order marks and slots.
    private static readonly NftData PublishedPortsUserData = new(Convert.FromHexString("000400000000010401000000030800040d0000000100060400000000"));
    private static readonly NftData PortChainsUserData = new(Convert.FromHexString("000400000000010400000000030800040d0000000100060400000000"));
    private static readonly NftData BackendsUserData = new(Convert.FromHexString(
        "000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000400000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000"));
    private static readonly NftData ProtoSetUserData = new(Convert.FromHexString("000401000000030e0004090000000106000410000000"));

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

    /// <summary>Only a packet mark-published marked is dispatched: the key holds the mark, so any other packet misses.</summary>
    private static NftChain Dispatch() =>
        new("dispatch", [new NftRule($"meta mark . meta l4proto . th dport vmap @{PortChainsMap}",
            [
                new Meta(MetaKey.Mark),
                new Meta(MetaKey.L4Proto, Registers.R32(1)),
                new Payload(PayloadBase.Transport, 2, 2, Registers.R32(2)),
                new Lookup(PortChainsMap, Registers.R1, Registers.Verdict),
            ])],
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
    /// Seed of the maglev chains' jhash. Fixed, because without one the kernel draws a random seed per rule, so every
    /// rewrite of the chain would move every client: the point of Maglev is that it does not.
    /// </summary>
    public const string HashSeed = "0x4d455348";

    private const uint HashSeedValue = 0x4d455348;

    /// <summary>
    /// The chain a published port dispatches to: <c>pick-rr-N</c> (round robin, numgen inc mod N over the port's N
    /// slots of <see cref="BackendsMap"/>) or <c>pick-maglev-M</c> (<c>--lb maglev</c> or <c>--affinity source-ip</c>:
    /// jhash of the client's address mod M over the port's M buckets of <see cref="MaglevMap"/>, a Maglev table,
    /// <see cref="Balancing.MaglevTable"/>), with <c>-local-</c> for a <c>traffic=local</c> port (which also sets
    /// <see cref="LocalTrafficMark"/>). Every port with the same mode and modulus shares the chain, so a round robin
    /// counter is shared too: each port's connections still take every slot in turn as the counter passes, and equal
    /// shares hold whenever connections of different ports do not arrive in lockstep with the counter.
    /// </summary>
    public static string PickChain(string mode, bool local, int modulus) =>
        string.Create(CultureInfo.InvariantCulture, $"{PickChainPrefix}{mode}-{(local ? "local-" : "")}{modulus}");

    private static NftChain PickChainOf(string chain)
    {
        var parts = chain[PickChainPrefix.Length..].Split('-');
        var maglev = parts[0] == Maglev;
        var local = parts.Length == 3;
        var modulus = uint.Parse(parts[^1], CultureInfo.InvariantCulture);
        List<Expression> expressions = [];
        if (local)
        {
            expressions.AddRange([new Meta(MetaKey.Mark), new Bitwise(4, NftData.U32(~LocalTrafficBit), NftData.U32(LocalTrafficBit)), new MetaSet(MetaKey.Mark)]);
        }

        // As nft lays it out: l4proto in register 1, dport in 9, the slot in 10 (the client's address in 15 to hash),
        // the lookup's result (address . port) back into 1 and 9 for the dnat.
        expressions.AddRange([new Meta(MetaKey.L4Proto), new Payload(PayloadBase.Transport, 2, 2, Registers.R32(1))]);
        string key;
        if (maglev)
        {
            expressions.AddRange([new Payload(PayloadBase.Network, 12, 4, Registers.R32(7)), new JHash(Registers.R32(7), 4, modulus, HashSeedValue, 0, Registers.R32(2))]);
            key = string.Create(CultureInfo.InvariantCulture, $"jhash ip saddr mod {modulus} seed {HashSeed}");
        }
        else
        {
            expressions.Add(new Numgen(modulus, NumgenType.Incremental, 0, Registers.R32(2)));
            key = string.Create(CultureInfo.InvariantCulture, $"numgen inc mod {modulus}");
        }

        var map = maglev ? MaglevMap : BackendsMap;
        expressions.AddRange([new Lookup(map, Registers.R1, Registers.R1), new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R32(1))]);
        var keep = local ? $"meta mark set meta mark | {LocalTrafficMark} " : "";
        return new NftChain(chain, [new NftRule($"{keep}dnat ip addr . port to meta l4proto . th dport . {key} map @{map}", expressions)]);
    }

    internal static string Mark(int mark) => "0x" + mark.ToString("x8", CultureInfo.InvariantCulture);
}
