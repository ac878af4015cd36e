using System.Globalization;
using System.Net;
using System.Text;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>One published port of a service in the sandbox layout: the backends get it round robin (numgen → dnat map).</summary>
internal sealed record SandboxService(string Name, bool Udp, ushort Port, uint Mark, IReadOnlyList<(string Address, ushort Port)> Backends, bool Local = false);

/// <summary>
/// Mesh's ingress sandbox table (src/Mesh.Ingress/Dataplane/IngressSandboxTable.cs and the comments NftPlanner adds)
/// two ways from the same services: the nft script Mesh writes today, and the same objects through the netlink
/// library, in the order nft sends them, so the captured nft batch is the golden for the library's.
/// </summary>
internal static class NfTablesSandboxLayout
{
    public const string Table = "mesh";
    private const Family Ip = Family.Ip;

    // nft's own set userdata (key/data byte order and typeof, for nft to print with; the kernel stores it opaque),
    // as captured from nft 1.0.6 for these declarations.
    public static readonly NftData PublishedPortsUserData = new(Convert.FromHexString("000400000000010401000000030800040d0000000100060400000000"));
    public static readonly NftData ServiceChainsUserData = new(Convert.FromHexString("000401000000010400000000060400000000"));
    public static readonly NftData ProtoSetUserData = new(Convert.FromHexString("000401000000030e0004090000000106000410000000"));
    public static readonly NftData DnatMapUserData = new(Convert.FromHexString("000401000000010400000000060400000000"));

    public static IReadOnlyList<SandboxService> TwoServices { get; } =
    [
        new("web", false, 8080, 0x100, [("10.255.0.5", 80), ("10.255.0.6", 80)]),
        new("loc", true, 53, 0x101, [("10.255.0.7", 5353)], Local: true),
    ];

    /// <summary><paramref name="count"/> services with <paramref name="tasks"/> backends each, ports from 10000, marks from 0x100.</summary>
    public static IReadOnlyList<SandboxService> Many(int count, int tasks) =>
        Enumerable.Range(0, count).Select(i => new SandboxService(
            "s" + i.ToString(CultureInfo.InvariantCulture), false, (ushort)(10000 + i), 0x100u + (uint)i,
            Enumerable.Range(0, tasks).Select(t => ($"10.255.{(i * tasks + t) / 250 % 250 + 1}.{(i * tasks + t) % 250 + 2}", (ushort)80)).ToArray())).ToList();

    public static string Script(IReadOnlyList<SandboxService> services)
    {
        var s = new StringBuilder();
        s.Append("""
            table ip mesh {
              map published-ports { type inet_proto . inet_service : mark; }
              map service-chains { type mark : verdict; }
              chain mark-published {
                type filter hook prerouting priority mangle; policy accept;
                iifname "eth1" fib daddr type local meta l4proto { tcp, udp } meta mark set meta l4proto . th dport map @published-ports
              }
              chain dispatch {
                type nat hook prerouting priority dstnat; policy accept;
                meta mark vmap @service-chains
              }
              chain source-nat {
                type nat hook postrouting priority srcnat; policy accept;
                meta mark & 0x01000000 != 0 return
                oifname "eth0" ip daddr 10.255.0.0/16 ct status & dnat != 0 snat to 10.255.0.2
              }
            }

            """);
        foreach (var v in services)
        {
            var map = string.Join(", ", v.Backends.Select((b, i) => $"{i} : {b.Address} . {b.Port}"));
            var keep = v.Local ? "meta mark set meta mark | 0x01000000 " : "";
            s.Append(CultureInfo.InvariantCulture, $"add chain ip mesh svc-{v.Name}\n");
            s.Append(CultureInfo.InvariantCulture, $"add rule ip mesh svc-{v.Name} {(v.Udp ? "udp" : "tcp")} dport {v.Port} {keep}dnat ip addr . port to numgen inc mod {v.Backends.Count} map {{ {map} }} comment \"{Comment(v)}\"\n");
        }
        foreach (var chunk in services.Chunk(500))
        {
            s.Append("add element ip mesh published-ports { ").AppendJoin(", ", chunk.Select(v => $"{(v.Udp ? "udp" : "tcp")} . {v.Port} : 0x{v.Mark:x8}")).Append(" }\n");
            s.Append("add element ip mesh service-chains { ").AppendJoin(", ", chunk.Select(v => $"0x{v.Mark:x8} : goto svc-{v.Name}")).Append(" }\n");
        }
        s.Append("add chain ip mesh state\nadd rule ip mesh state counter comment \"skeleton=0011223344556677\"\n");
        return s.ToString();
    }

    public static string Comment(SandboxService v) => v.Name switch
    {
        "web" => "h=0123456789abcdef",
        "loc" => "h=fedcba9876543210",
        _ => "h=" + v.Name,
    };

    public static NfTablesBatch Batch(IReadOnlyList<SandboxService> services)
    {
        var b = new NfTablesBatch();
        b.AddTable(new Table(Ip, Table));
        b.AddChain(new Chain(Ip, Table, "mark-published", new BaseChain("filter", Hook.Prerouting, BaseChain.PriorityMangle)));
        b.AddChain(new Chain(Ip, Table, "dispatch", new BaseChain("nat", Hook.Prerouting, BaseChain.PriorityDstNat)));
        b.AddChain(new Chain(Ip, Table, "source-nat", new BaseChain("nat", Hook.Postrouting, BaseChain.PrioritySrcNat)));
        b.AddSet(new Set(Ip, Table, "published-ports", SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService), SetFlags.Map)
        {
            DataType = SetDataType.Mark,
            UserData = PublishedPortsUserData,
        });
        b.AddSet(new Set(Ip, Table, "service-chains", SetDataType.Mark, SetFlags.Map) { DataType = SetDataType.Verdict, UserData = ServiceChainsUserData });
        b.AddSet(new Set(Ip, Table, "__set%d", SetDataType.InetProto, SetFlags.Anonymous | SetFlags.Constant) { Size = 2, UserData = ProtoSetUserData });
        b.AddElements(Ip, Table, "__set%d", [new SetElement(NftData.U8(6)), new SetElement(NftData.U8(17))]);
        b.AddRule(new Rule(Ip, Table, "mark-published",
        [
            new Meta(MetaKey.IifName),
            new Cmp(CmpOp.Eq, NftData.InterfaceName("eth1")),
            new Fib(FibResult.AddressType, FibFlags.DestinationAddress),
            new Cmp(CmpOp.Eq, NftData.U32(2)), // RTN_LOCAL
            new Meta(MetaKey.L4Proto),
            new Lookup("__set%d"),
            new Meta(MetaKey.L4Proto),
            new Payload(PayloadBase.Transport, 2, 2, Registers.R32(1)),
            new Lookup("published-ports", Registers.R1, Registers.R1),
            new MetaSet(MetaKey.Mark),
        ]));
        b.AddRule(new Rule(Ip, Table, "dispatch", [new Meta(MetaKey.Mark), new Lookup("service-chains", Registers.R1, Registers.Verdict)]));
        b.AddRule(new Rule(Ip, Table, "source-nat",
        [
            new Meta(MetaKey.Mark),
            new Bitwise(4, NftData.U32(0x01000000), NftData.U32(0)),
            new Cmp(CmpOp.Neq, NftData.U32(0)),
            new VerdictExpression(Verdict.Return),
        ]));
        b.AddRule(new Rule(Ip, Table, "source-nat",
        [
            new Meta(MetaKey.OifName),
            new Cmp(CmpOp.Eq, NftData.InterfaceName("eth0")),
            new Payload(PayloadBase.Network, 16, 2),
            new Cmp(CmpOp.Eq, new NftData([10, 255])),
            new Ct(CtKey.Status),
            new Bitwise(4, NftData.U32(0x20), NftData.U32(0)), // IPS_DST_NAT
            new Cmp(CmpOp.Neq, NftData.U32(0)),
            new Immediate(NftData.Ipv4("10.255.0.2")),
            new Nat(NatType.Snat, Ip),
        ]));
        foreach (var v in services) AddService(b, v);
        foreach (var chunk in services.Chunk(500))
        {
            b.AddElements(Ip, Table, "published-ports", chunk.Select(v => new SetElement(NftData.Concat(NftData.U8(v.Udp ? (byte)17 : (byte)6), NftData.Be16(v.Port)), NftData.U32(v.Mark))).ToArray());
            b.AddElements(Ip, Table, "service-chains", chunk.Select(v => new SetElement(NftData.U32(v.Mark), Verdict: Verdict.Goto("svc-" + v.Name))).ToArray());
        }
        b.AddChain(new Chain(Ip, Table, "state"));
        b.AddRule(new Rule(Ip, Table, "state", [new Counter()], "skeleton=0011223344556677"));
        return b;
    }

    public static void AddService(NfTablesBatch b, SandboxService v)
    {
        var chain = "svc-" + v.Name;
        b.AddChain(new Chain(Ip, Table, chain));
        b.AddSet(new Set(Ip, Table, "__map%d", SetDataType.Integer32, SetFlags.Anonymous | SetFlags.Constant | SetFlags.Map)
        {
            DataType = SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService),
            Size = (uint)v.Backends.Count,
            UserData = DnatMapUserData,
        });
        b.AddElements(Ip, Table, "__map%d", v.Backends.Select((t, i) => new SetElement(NftData.U32((uint)i), NftData.Concat(NftData.Ipv4(IPAddress.Parse(t.Address)), NftData.Be16(t.Port)))).ToArray());
        var rule = new List<Expression>
        {
            new Meta(MetaKey.L4Proto),
            new Cmp(CmpOp.Eq, NftData.U8(v.Udp ? (byte)17 : (byte)6)),
            new Payload(PayloadBase.Transport, 2, 2),
            new Cmp(CmpOp.Eq, NftData.Be16(v.Port)),
        };
        if (v.Local)
        {
            rule.Add(new Meta(MetaKey.Mark));
            rule.Add(new Bitwise(4, NftData.U32(0xfeffffff), NftData.U32(0x01000000)));
            rule.Add(new MetaSet(MetaKey.Mark));
        }
        rule.Add(new Numgen((uint)v.Backends.Count));
        rule.Add(new Lookup("__map%d", Registers.R1, Registers.R1));
        rule.Add(new Nat(NatType.Dnat, Ip, Registers.R1, ProtoMin: Registers.R32(1)));
        b.AddRule(new Rule(Ip, Table, chain, rule, Comment(v)));
    }
}
