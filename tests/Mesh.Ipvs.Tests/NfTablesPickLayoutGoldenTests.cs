using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// The map-element layout of Mesh's ingress sandbox (issue 12 part 3: per service only elements; a picking chain per
/// balancing mode and modulus) through the library, against what nft 1.0.6 sends for the same script, captured on this
/// machine (kernel 6.18) in a throw-away namespace with <c>strace -e trace=sendmsg -e write=3 nft -f SCRIPT</c>:
///   table ip mesh {
///     map port-chains { type mark . inet_proto . inet_service : verdict; }
///     map backends { typeof meta l4proto . th dport . numgen inc mod 1 : ip daddr . th dport; }
///     map maglev { typeof meta l4proto . th dport . jhash ip saddr mod 2 seed 0x4d455348 : ip daddr . th dport; }
///     chain dispatch {
///       type nat hook prerouting priority dstnat; policy accept;
///       meta mark . meta l4proto . th dport vmap @port-chains
///     }
///   }
///   add chain ip mesh pick-rr-local-2
///   add rule ip mesh pick-rr-local-2 meta mark set meta mark | 0x01000000 dnat ip addr . port to meta l4proto . th dport . numgen inc mod 2 map @backends
///   add chain ip mesh pick-maglev-251
///   add rule ip mesh pick-maglev-251 dnat ip addr . port to meta l4proto . th dport . jhash ip saddr mod 251 seed 0x4d455348 map @maglev
///   add element ip mesh port-chains { 0x00000100 . tcp . 8080 : goto pick-rr-local-2, 0x00000101 . udp . 53 : goto pick-maglev-251 }
///   add element ip mesh backends { tcp . 8080 . 0 : 10.255.0.5 . 80, tcp . 8080 . 1 : 10.255.0.6 . 80 }
///   add element ip mesh maglev { udp . 53 . 0 : 10.255.0.7 . 5353, udp . 53 . 1 : 10.255.0.8 . 5353 }
/// New here against the older captures: a three-part concatenated verdict-map key, typeof maps keyed by a numgen or
/// jhash result, numgen and jhash into 32-bit registers other than the first, and a map lookup over a 12-byte key.
/// </summary>
public class NfTablesPickLayoutGoldenTests
{
    private static readonly string[] Messages =
    [
        // BATCH_BEGIN
        """
        14 00 00 00 10 00 01 00 00 00 00 00 00 00 00 00
        00 00 00 0a
        """,
        // NEWTABLE
        """
        28 00 00 00 00 0a 01 00 01 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        08 00 02 00 00 00 00 00
        """,
        // NEWCHAIN
        """
        54 00 00 00 03 0a 01 04 02 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 03 00 64 69 73 70 61 74 63 68 00 00 00 00
        08 00 07 00 6e 61 74 00 08 00 05 00 00 00 00 01
        14 00 04 80 08 00 01 00 00 00 00 00 08 00 02 00
        ff ff ff 9c
        """,
        // NEWSET
        """
        80 00 00 00 09 0a 01 04 03 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        10 00 02 00 70 6f 72 74 2d 63 68 61 69 6e 73 00
        08 00 03 00 00 00 00 08 08 00 04 00 00 01 33 0d
        08 00 05 00 00 00 00 0c 08 00 06 00 ff ff ff 00
        08 00 07 00 00 00 00 00 08 00 0a 00 00 00 00 01
        20 00 0d 00 00 04 00 00 00 00 01 04 00 00 00 00
        03 08 00 04 0d 00 00 00 01 00 06 04 00 00 00 00
        """,
        // NEWSET
        """
        f8 00 00 00 09 0a 01 04 04 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 02 00 62 61 63 6b 65 6e 64 73 00 00 00 00
        08 00 03 00 00 00 00 08 08 00 04 00 00 00 c3 44
        08 00 05 00 00 00 00 0c 08 00 06 00 00 00 01 cd
        08 00 07 00 00 00 00 08 08 00 0a 00 00 00 00 02
        98 00 0d 00 00 04 00 00 00 00 01 04 00 00 00 00
        03 4a 00 04 0d 00 00 00 01 42 00 0e 00 04 09 00
        00 00 01 06 00 04 10 00 00 00 01 14 00 04 07 00
        00 00 01 0c 00 04 0b 00 00 00 01 04 02 00 00 00
        02 1a 00 04 17 00 00 00 01 12 00 04 00 00 00 00
        01 04 01 00 00 00 02 04 00 00 00 00 04 34 00 04
        0d 00 00 00 01 2c 00 14 00 04 07 00 00 00 01 0c
        00 04 0c 00 00 00 01 04 0c 00 00 00 01 14 00 04
        07 00 00 00 01 0c 00 04 0b 00 00 00 01 04 02 00
        00 00 06 04 00 00 00 00
        """,
        // NEWSET
        """
        00 01 00 00 09 0a 01 04 05 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0b 00 02 00 6d 61 67 6c 65 76 00 00 08 00 03 00
        00 00 00 08 08 00 04 00 00 00 c3 44 08 00 05 00
        00 00 00 0c 08 00 06 00 00 00 01 cd 08 00 07 00
        00 00 00 08 08 00 0a 00 00 00 00 03 a4 00 0d 00
        00 04 00 00 00 00 01 04 00 00 00 00 03 56 00 04
        0d 00 00 00 01 4e 00 0e 00 04 09 00 00 00 01 06
        00 04 10 00 00 00 01 14 00 04 07 00 00 00 01 0c
        00 04 0b 00 00 00 01 04 02 00 00 00 02 26 00 04
        18 00 00 00 01 1e 00 04 00 00 00 00 01 04 00 00
        00 00 02 04 02 00 00 00 03 04 48 53 45 4d 04 04
        01 00 00 00 04 34 00 04 0d 00 00 00 01 2c 00 14
        00 04 07 00 00 00 01 0c 00 04 0c 00 00 00 01 04
        0c 00 00 00 01 14 00 04 07 00 00 00 01 0c 00 04
        0b 00 00 00 01 04 02 00 00 00 06 04 00 00 00 00
        """,
        // NEWRULE
        """
        ec 00 00 00 06 0a 01 0c 06 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 02 00 64 69 73 70 61 74 63 68 00 00 00 00
        bc 00 04 80 24 00 01 80 09 00 01 00 6d 65 74 61
        00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 03
        08 00 01 00 00 00 00 01 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 10 08 00 01 00 00 00 00 09 34 00 01 80
        0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80
        08 00 01 00 00 00 00 0a 08 00 02 00 00 00 00 02
        08 00 03 00 00 00 00 02 08 00 04 00 00 00 00 02
        3c 00 01 80 0b 00 01 00 6c 6f 6f 6b 75 70 00 00
        2c 00 02 80 08 00 02 00 00 00 00 01 08 00 03 00
        00 00 00 00 10 00 01 00 70 6f 72 74 2d 63 68 61
        69 6e 73 00 08 00 04 00 00 00 00 01
        """,
        // NEWCHAIN
        """
        34 00 00 00 03 0a 01 04 07 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 03 00 70 69 63 6b 2d 72 72 2d 6c 6f 63 61
        6c 2d 32 00
        """,
        // NEWRULE
        """
        c4 01 00 00 06 0a 01 0c 08 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 02 00 70 69 63 6b 2d 72 72 2d 6c 6f 63 61
        6c 2d 32 00 90 01 04 80 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 03 08 00 01 00 00 00 00 01 4c 00 01 80
        0c 00 01 00 62 69 74 77 69 73 65 00 3c 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01
        08 00 06 00 00 00 00 00 08 00 03 00 00 00 00 04
        0c 00 04 80 08 00 01 00 ff ff ff fe 0c 00 05 80
        08 00 01 00 00 00 00 01 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 03 08 00 03 00 00 00 00 01 24 00 01 80
        09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80
        08 00 02 00 00 00 00 10 08 00 01 00 00 00 00 01
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 09 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 02 08 00 04 00
        00 00 00 02 34 00 01 80 0b 00 01 00 6e 75 6d 67
        65 6e 00 00 24 00 02 80 08 00 01 00 00 00 00 0a
        08 00 02 00 00 00 00 02 08 00 03 00 00 00 00 00
        08 00 04 00 00 00 00 00 3c 00 01 80 0b 00 01 00
        6c 6f 6f 6b 75 70 00 00 2c 00 02 80 08 00 02 00
        00 00 00 01 08 00 03 00 00 00 00 01 0d 00 01 00
        62 61 63 6b 65 6e 64 73 00 00 00 00 08 00 04 00
        00 00 00 02 30 00 01 80 08 00 01 00 6e 61 74 00
        24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 01 08 00 05 00
        00 00 00 09
        """,
        // NEWCHAIN
        """
        34 00 00 00 03 0a 01 04 09 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 03 00 70 69 63 6b 2d 6d 61 67 6c 65 76 2d
        32 35 31 00
        """,
        // NEWRULE
        """
        78 01 00 00 06 0a 01 0c 0a 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 02 00 70 69 63 6b 2d 6d 61 67 6c 65 76 2d
        32 35 31 00 44 01 04 80 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 10 08 00 01 00 00 00 00 01 34 00 01 80
        0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80
        08 00 01 00 00 00 00 09 08 00 02 00 00 00 00 02
        08 00 03 00 00 00 00 02 08 00 04 00 00 00 00 02
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 0f 08 00 02 00
        00 00 00 01 08 00 03 00 00 00 00 0c 08 00 04 00
        00 00 00 04 4c 00 01 80 09 00 01 00 68 61 73 68
        00 00 00 00 3c 00 02 80 08 00 01 00 00 00 00 0f
        08 00 02 00 00 00 00 0a 08 00 03 00 00 00 00 04
        08 00 04 00 00 00 00 fb 08 00 05 00 4d 45 53 48
        08 00 06 00 00 00 00 00 08 00 07 00 00 00 00 00
        38 00 01 80 0b 00 01 00 6c 6f 6f 6b 75 70 00 00
        28 00 02 80 08 00 02 00 00 00 00 01 08 00 03 00
        00 00 00 01 0b 00 01 00 6d 61 67 6c 65 76 00 00
        08 00 04 00 00 00 00 03 30 00 01 80 08 00 01 00
        6e 61 74 00 24 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 02 08 00 03 00 00 00 00 01
        08 00 05 00 00 00 00 09
        """,
        // NEWSETELEM
        """
        b4 00 00 00 0c 0a 01 04 0b 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        10 00 02 00 70 6f 72 74 2d 63 68 61 69 6e 73 00
        08 00 04 00 00 00 00 01 7c 00 03 80 3c 00 01 80
        14 00 01 80 10 00 01 00 00 01 00 00 06 00 00 00
        1f 90 00 00 24 00 02 80 20 00 02 80 08 00 01 00
        ff ff ff fc 14 00 02 00 70 69 63 6b 2d 72 72 2d
        6c 6f 63 61 6c 2d 32 00 3c 00 02 80 14 00 01 80
        10 00 01 00 01 01 00 00 11 00 00 00 00 35 00 00
        24 00 02 80 20 00 02 80 08 00 01 00 ff ff ff fc
        14 00 02 00 70 69 63 6b 2d 6d 61 67 6c 65 76 2d
        32 35 31 00
        """,
        // NEWSETELEM
        """
        8c 00 00 00 0c 0a 01 04 0c 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 02 00 62 61 63 6b 65 6e 64 73 00 00 00 00
        08 00 04 00 00 00 00 02 54 00 03 80 28 00 01 80
        14 00 01 80 10 00 01 00 06 00 00 00 1f 90 00 00
        00 00 00 00 10 00 02 80 0c 00 01 00 0a ff 00 05
        00 50 00 00 28 00 02 80 14 00 01 80 10 00 01 00
        06 00 00 00 1f 90 00 00 01 00 00 00 10 00 02 80
        0c 00 01 00 0a ff 00 06 00 50 00 00
        """,
        // NEWSETELEM
        """
        88 00 00 00 0c 0a 01 04 0d 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0b 00 02 00 6d 61 67 6c 65 76 00 00 08 00 04 00
        00 00 00 03 54 00 03 80 28 00 01 80 14 00 01 80
        10 00 01 00 11 00 00 00 00 35 00 00 00 00 00 00
        10 00 02 80 0c 00 01 00 0a ff 00 07 14 e9 00 00
        28 00 02 80 14 00 01 80 10 00 01 00 11 00 00 00
        00 35 00 00 01 00 00 00 10 00 02 80 0c 00 01 00
        0a ff 00 08 14 e9 00 00
        """,
        // BATCH_END
        """
        14 00 00 00 11 00 01 00 0e 00 00 00 00 00 00 00
        00 00 00 0a
        """,
    ];

    [Fact]
    public void Picking_layout_batch_is_the_one_nft_sends()
    {
        NfTablesGoldenBytesTests.AssertNftBatch(Messages, Batch());
    }

    /// <summary>The script above through the library, in nft's order.</summary>
    internal static NfTablesBatch Batch()
    {
        const Family ip = Family.Ip;
        const string t = "mesh";
        var protoPortSlot = SetDataType.Concat(SetDataType.InetProto, SetDataType.InetService, SetDataType.Integer32);
        var addressPort = SetDataType.Concat(SetDataType.Ipv4Address, SetDataType.InetService);
        var b = new NfTablesBatch();
        b.AddTable(new Table(ip, t));
        b.AddChain(new Chain(ip, t, "dispatch", new BaseChain("nat", Hook.Prerouting, BaseChain.PriorityDstNat)));
        b.AddSet(new Set(ip, t, "port-chains", SetDataType.Concat(SetDataType.Mark, SetDataType.InetProto, SetDataType.InetService), SetFlags.Map)
        {
            DataType = SetDataType.Verdict,
            UserData = new NftData(Hex.Parse("000400000000010400000000030800040d0000000100060400000000")),
        });
        b.AddSet(new Set(ip, t, "backends", protoPortSlot, SetFlags.Map)
        {
            DataType = addressPort,
            UserData = new NftData(Hex.Parse(
                "000400000000010400000000034a00040d0000000142000e00040900000001060004100000000114000407000000010c00040b000000010402000000021a0004170000000112000400000000010401000000020400000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")),
        });
        b.AddSet(new Set(ip, t, "maglev", protoPortSlot, SetFlags.Map)
        {
            DataType = addressPort,
            UserData = new NftData(Hex.Parse(
                "000400000000010400000000035600040d000000014e000e00040900000001060004100000000114000407000000010c00040b0000000104020000000226000418000000011e00040000000001040000000002040200000003044853454d040401000000043400040d000000012c0014000407000000010c00040c00000001040c0000000114000407000000010c00040b000000010402000000060400000000")),
        });
        b.AddRule(new Rule(ip, t, "dispatch",
        [
            new Meta(MetaKey.Mark),
            new Meta(MetaKey.L4Proto, Registers.R32(1)),
            new Payload(PayloadBase.Transport, 2, 2, Registers.R32(2)),
            new Lookup("port-chains", Registers.R1, Registers.Verdict),
        ]));
        b.AddChain(new Chain(ip, t, "pick-rr-local-2"));
        b.AddRule(new Rule(ip, t, "pick-rr-local-2",
        [
            new Meta(MetaKey.Mark),
            new Bitwise(4, NftData.U32(0xfeffffff), NftData.U32(0x01000000)),
            new MetaSet(MetaKey.Mark),
            new Meta(MetaKey.L4Proto),
            new Payload(PayloadBase.Transport, 2, 2, Registers.R32(1)),
            new Numgen(2, NumgenType.Incremental, 0, Registers.R32(2)),
            new Lookup("backends", Registers.R1, Registers.R1),
            new Nat(NatType.Dnat, ip, Registers.R1, ProtoMin: Registers.R32(1)),
        ]));
        b.AddChain(new Chain(ip, t, "pick-maglev-251"));
        b.AddRule(new Rule(ip, t, "pick-maglev-251",
        [
            new Meta(MetaKey.L4Proto),
            new Payload(PayloadBase.Transport, 2, 2, Registers.R32(1)),
            new Payload(PayloadBase.Network, 12, 4, Registers.R32(7)),
            new JHash(Registers.R32(7), 4, 251, 0x4d455348, 0, Registers.R32(2)),
            new Lookup("maglev", Registers.R1, Registers.R1),
            new Nat(NatType.Dnat, ip, Registers.R1, ProtoMin: Registers.R32(1)),
        ]));
        static NftData Key(byte proto, ushort port, uint slot) => NftData.Concat(NftData.U8(proto), NftData.Be16(port), NftData.U32(slot));
        static NftData To(string address, ushort port) => NftData.Concat(NftData.Ipv4(address), NftData.Be16(port));
        b.AddElements(ip, t, "port-chains",
        [
            new SetElement(NftData.Concat(NftData.U32(0x100), NftData.U8(6), NftData.Be16(8080)), Verdict: Verdict.Goto("pick-rr-local-2")),
            new SetElement(NftData.Concat(NftData.U32(0x101), NftData.U8(17), NftData.Be16(53)), Verdict: Verdict.Goto("pick-maglev-251")),
        ]);
        b.AddElements(ip, t, "backends", [new SetElement(Key(6, 8080, 0), To("10.255.0.5", 80)), new SetElement(Key(6, 8080, 1), To("10.255.0.6", 80))]);
        b.AddElements(ip, t, "maglev", [new SetElement(Key(17, 53, 0), To("10.255.0.7", 5353)), new SetElement(Key(17, 53, 1), To("10.255.0.8", 5353))]);
        return b;
    }
}
