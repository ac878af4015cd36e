using System.Buffers.Binary;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// The nf_tables batches the library writes, against what nft 1.0.6 sends for the same ruleset: every message nft
/// sent was captured on this machine (kernel 6.18) in a throw-away namespace with
/// <c>strace -e trace=sendmsg -e write=3 nft -f SCRIPT</c>, split into its messages, and is pasted below verbatim.
/// One deliberate difference is applied by <see cref="WithAck"/>, in the open: the library sets NLM_F_ACK (0x04) on
/// every change so that each one's answer maps back to it (nft asks for none and reads only errors). Between them the
/// three batches hold every object (table, base and regular chains, named/anonymous sets and maps with concatenated
/// keys and data, verdict maps, elements with data and verdicts) and every expression Mesh's layouts use (meta
/// load/set, payload, cmp, bitwise, fib, lookup/map/vmap, immediate data and verdicts (return, accept, jump, goto),
/// numgen, jhash, ct, nat snat/dnat with address and port registers, masquerade, counter, rule comments) and the
/// deletes (element, flush chain, chain, flush map, table).
/// </summary>
public class NfTablesGoldenBytesTests
{
    private static string WithAck(string hex)
    {
        var b = Hex.Parse(hex);
        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(4));
        if (type is not (0x10 or 0x11)) b[6] |= 0x04; // NLM_F_ACK on changes, not on BATCH_BEGIN/END
        return Hex.Format(b);
    }

    internal static void AssertNftBatch(string[] nftMessages, NfTablesBatch batch) => AssertBatch(nftMessages, batch);

    private static void AssertBatch(string[] nftMessages, NfTablesBatch batch)
    {
        var actual = NetlinkDecoder.ParseMessages(batch.Build(0));
        Assert.Equal(nftMessages.Length, actual.Count);
        var bytes = batch.Build(0);
        int off = 0;
        for (int i = 0; i < nftMessages.Length; i++)
        {
            int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(off));
            var what = i == 0 ? "batch begin" : i == nftMessages.Length - 1 ? "batch end" : batch.Describe(i - 1);
            var expected = WithAck(nftMessages[i]);
            var got = Hex.Format(bytes.AsSpan(off, len));
            Assert.True(expected == got, $"message {i} ({what}):\n nft:  {expected}\n mesh: {got}");
            off += (len + 3) & ~3;
        }
        Assert.Equal(bytes.Length, off);
    }

    /// <summary>
    /// Mesh's ingress sandbox table with two services (one traffic=local), as NftPlanner writes it:
    ///   table ip mesh {
    ///     map published-ports { type inet_proto . inet_service : mark; }
    ///     map service-chains { type mark : verdict; }
    ///     chain mark-published {
    ///       type filter hook prerouting priority mangle; policy accept;
    ///       iifname "eth1" fib daddr type local meta l4proto { tcp, udp } meta mark set meta l4proto . th dport map @published-ports
    ///     }
    ///     chain dispatch {
    ///       type nat hook prerouting priority dstnat; policy accept;
    ///       meta mark vmap @service-chains
    ///     }
    ///     chain source-nat {
    ///       type nat hook postrouting priority srcnat; policy accept;
    ///       meta mark &amp; 0x01000000 != 0 return
    ///       oifname "eth0" ip daddr 10.255.0.0/16 ct status &amp; dnat != 0 snat to 10.255.0.2
    ///     }
    ///   }
    ///   add chain ip mesh svc-web
    ///   add rule ip mesh svc-web tcp dport 8080 dnat ip addr . port to numgen inc mod 2 map { 0 : 10.255.0.5 . 80, 1 : 10.255.0.6 . 80 } comment "h=0123456789abcdef"
    ///   add chain ip mesh svc-loc
    ///   add rule ip mesh svc-loc udp dport 53 meta mark set meta mark | 0x01000000 dnat ip addr . port to numgen inc mod 1 map { 0 : 10.255.0.7 . 5353 } comment "h=fedcba9876543210"
    ///   add element ip mesh published-ports { tcp . 8080 : 0x00000100, udp . 53 : 0x00000101 }
    ///   add element ip mesh service-chains { 0x00000100 : goto svc-web, 0x00000101 : goto svc-loc }
    ///   add chain ip mesh state
    ///   add rule ip mesh state counter comment "skeleton=0011223344556677"
    /// (<c>ct status &amp; dnat != 0</c> is what Mesh's <c>ct status dnat</c> means; written so, nft names the bitwise
    /// operation as the library always does, and the kernel stores the same rule either way.)
    /// </summary>
    private static readonly string[] Sandbox =
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
        5c 00 00 00 03 0a 01 04 02 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        13 00 03 00 6d 61 72 6b 2d 70 75 62 6c 69 73 68
        65 64 00 00 0b 00 07 00 66 69 6c 74 65 72 00 00
        08 00 05 00 00 00 00 01 14 00 04 80 08 00 01 00
        00 00 00 00 08 00 02 00 ff ff ff 6a
        """,
        // NEWCHAIN
        """
        54 00 00 00 03 0a 01 04 03 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 03 00 64 69 73 70 61 74 63 68 00 00 00 00
        08 00 07 00 6e 61 74 00 08 00 05 00 00 00 00 01
        14 00 04 80 08 00 01 00 00 00 00 00 08 00 02 00
        ff ff ff 9c
        """,
        // NEWCHAIN
        """
        54 00 00 00 03 0a 01 04 04 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0f 00 03 00 73 6f 75 72 63 65 2d 6e 61 74 00 00
        08 00 07 00 6e 61 74 00 08 00 05 00 00 00 00 01
        14 00 04 80 08 00 01 00 00 00 00 04 08 00 02 00
        00 00 00 64
        """,
        // NEWSET
        """
        84 00 00 00 09 0a 01 04 05 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 02 00 70 75 62 6c 69 73 68 65 64 2d 70 6f
        72 74 73 00 08 00 03 00 00 00 00 08 08 00 04 00
        00 00 03 0d 08 00 05 00 00 00 00 08 08 00 06 00
        00 00 00 13 08 00 07 00 00 00 00 04 08 00 0a 00
        00 00 00 01 20 00 0d 00 00 04 00 00 00 00 01 04
        01 00 00 00 03 08 00 04 0d 00 00 00 01 00 06 04
        00 00 00 00
        """,
        // NEWSET
        """
        7c 00 00 00 09 0a 01 04 06 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        13 00 02 00 73 65 72 76 69 63 65 2d 63 68 61 69
        6e 73 00 00 08 00 03 00 00 00 00 08 08 00 04 00
        00 00 00 13 08 00 05 00 00 00 00 04 08 00 06 00
        ff ff ff 00 08 00 07 00 00 00 00 00 08 00 0a 00
        00 00 00 02 16 00 0d 00 00 04 01 00 00 00 01 04
        00 00 00 00 06 04 00 00 00 00 00 00
        """,
        // NEWSET
        """
        74 00 00 00 09 0a 01 04 07 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 73 65 74 25 64 00 08 00 03 00
        00 00 00 03 08 00 04 00 00 00 00 0c 08 00 05 00
        00 00 00 01 08 00 0a 00 00 00 00 03 0c 00 09 80
        08 00 01 00 00 00 00 02 1a 00 0d 00 00 04 01 00
        00 00 03 0e 00 04 09 00 00 00 01 06 00 04 10 00
        00 00 00 00
        """,
        // NEWSETELEM
        """
        58 00 00 00 0c 0a 01 04 08 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 73 65 74 25 64 00 08 00 04 00
        00 00 00 03 24 00 03 80 10 00 01 80 0c 00 01 80
        05 00 01 00 06 00 00 00 10 00 02 80 0c 00 01 80
        05 00 01 00 11 00 00 00
        """,
        // NEWRULE
        """
        f8 01 00 00 06 0a 01 0c 09 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        13 00 02 00 6d 61 72 6b 2d 70 75 62 6c 69 73 68
        65 64 00 00 c4 01 04 80 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 06 08 00 01 00 00 00 00 01 38 00 01 80
        08 00 01 00 63 6d 70 00 2c 00 02 80 08 00 01 00
        00 00 00 01 08 00 02 00 00 00 00 00 18 00 03 80
        14 00 01 00 65 74 68 31 00 00 00 00 00 00 00 00
        00 00 00 00 28 00 01 80 08 00 01 00 66 69 62 00
        1c 00 02 80 08 00 03 00 00 00 00 02 08 00 02 00
        00 00 00 03 08 00 01 00 00 00 00 01 2c 00 01 80
        08 00 01 00 63 6d 70 00 20 00 02 80 08 00 01 00
        00 00 00 01 08 00 02 00 00 00 00 00 0c 00 03 80
        08 00 01 00 02 00 00 00 24 00 01 80 09 00 01 00
        6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00
        00 00 00 10 08 00 01 00 00 00 00 01 30 00 01 80
        0b 00 01 00 6c 6f 6f 6b 75 70 00 00 20 00 02 80
        08 00 02 00 00 00 00 01 0c 00 01 00 5f 5f 73 65
        74 25 64 00 08 00 04 00 00 00 00 03 24 00 01 80
        09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80
        08 00 02 00 00 00 00 10 08 00 01 00 00 00 00 01
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 09 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 02 08 00 04 00
        00 00 00 02 40 00 01 80 0b 00 01 00 6c 6f 6f 6b
        75 70 00 00 30 00 02 80 08 00 02 00 00 00 00 01
        08 00 03 00 00 00 00 01 14 00 01 00 70 75 62 6c
        69 73 68 65 64 2d 70 6f 72 74 73 00 08 00 04 00
        00 00 00 01 24 00 01 80 09 00 01 00 6d 65 74 61
        00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 03
        08 00 03 00 00 00 00 01
        """,
        // NEWRULE
        """
        98 00 00 00 06 0a 01 0c 0a 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0d 00 02 00 64 69 73 70 61 74 63 68 00 00 00 00
        68 00 04 80 24 00 01 80 09 00 01 00 6d 65 74 61
        00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 03
        08 00 01 00 00 00 00 01 40 00 01 80 0b 00 01 00
        6c 6f 6f 6b 75 70 00 00 30 00 02 80 08 00 02 00
        00 00 00 01 08 00 03 00 00 00 00 00 13 00 01 00
        73 65 72 76 69 63 65 2d 63 68 61 69 6e 73 00 00
        08 00 04 00 00 00 00 02
        """,
        // NEWRULE
        """
        00 01 00 00 06 0a 01 0c 0b 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0f 00 02 00 73 6f 75 72 63 65 2d 6e 61 74 00 00
        d0 00 04 80 24 00 01 80 09 00 01 00 6d 65 74 61
        00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 03
        08 00 01 00 00 00 00 01 4c 00 01 80 0c 00 01 00
        62 69 74 77 69 73 65 00 3c 00 02 80 08 00 01 00
        00 00 00 01 08 00 02 00 00 00 00 01 08 00 06 00
        00 00 00 00 08 00 03 00 00 00 00 04 0c 00 04 80
        08 00 01 00 00 00 00 01 0c 00 05 80 08 00 01 00
        00 00 00 00 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 01 0c 00 03 80 08 00 01 00 00 00 00 00
        30 00 01 80 0e 00 01 00 69 6d 6d 65 64 69 61 74
        65 00 00 00 1c 00 02 80 08 00 01 00 00 00 00 00
        10 00 02 80 0c 00 02 80 08 00 01 00 ff ff ff fb
        """,
        // NEWRULE
        """
        dc 01 00 00 06 0a 01 0c 0c 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0f 00 02 00 73 6f 75 72 63 65 2d 6e 61 74 00 00
        ac 01 04 80 24 00 01 80 09 00 01 00 6d 65 74 61
        00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 07
        08 00 01 00 00 00 00 01 38 00 01 80 08 00 01 00
        63 6d 70 00 2c 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 00 18 00 03 80 14 00 01 00
        65 74 68 30 00 00 00 00 00 00 00 00 00 00 00 00
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 01 08 00 03 00 00 00 00 10 08 00 04 00
        00 00 00 02 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 00 0c 00 03 80 06 00 01 00 0a ff 00 00
        20 00 01 80 07 00 01 00 63 74 00 00 14 00 02 80
        08 00 02 00 00 00 00 02 08 00 01 00 00 00 00 01
        4c 00 01 80 0c 00 01 00 62 69 74 77 69 73 65 00
        3c 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 01 08 00 06 00 00 00 00 00 08 00 03 00
        00 00 00 04 0c 00 04 80 08 00 01 00 20 00 00 00
        0c 00 05 80 08 00 01 00 00 00 00 00 2c 00 01 80
        08 00 01 00 63 6d 70 00 20 00 02 80 08 00 01 00
        00 00 00 01 08 00 02 00 00 00 00 01 0c 00 03 80
        08 00 01 00 00 00 00 00 2c 00 01 80 0e 00 01 00
        69 6d 6d 65 64 69 61 74 65 00 00 00 18 00 02 80
        08 00 01 00 00 00 00 01 0c 00 02 80 08 00 01 00
        0a ff 00 02 28 00 01 80 08 00 01 00 6e 61 74 00
        1c 00 02 80 08 00 01 00 00 00 00 00 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 01
        """,
        // NEWCHAIN
        """
        2c 00 00 00 03 0a 01 04 0d 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 03 00 73 76 63 2d 77 65 62 00
        """,
        // NEWSET
        """
        80 00 00 00 09 0a 01 04 0e 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 6d 61 70 25 64 00 08 00 03 00
        00 00 00 0b 08 00 04 00 00 00 00 04 08 00 05 00
        00 00 00 04 08 00 06 00 00 00 01 cd 08 00 07 00
        00 00 00 08 08 00 0a 00 00 00 00 04 0c 00 09 80
        08 00 01 00 00 00 00 02 16 00 0d 00 00 04 01 00
        00 00 01 04 00 00 00 00 06 04 00 00 00 00 00 00
        """,
        // NEWSETELEM
        """
        78 00 00 00 0c 0a 01 04 0f 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 6d 61 70 25 64 00 08 00 04 00
        00 00 00 04 44 00 03 80 20 00 01 80 0c 00 01 80
        08 00 01 00 00 00 00 00 10 00 02 80 0c 00 01 00
        0a ff 00 05 00 50 00 00 20 00 02 80 0c 00 01 80
        08 00 01 00 01 00 00 00 10 00 02 80 0c 00 01 00
        0a ff 00 06 00 50 00 00
        """,
        // NEWRULE
        """
        98 01 00 00 06 0a 01 0c 10 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 73 76 63 2d 77 65 62 00 50 01 04 80
        24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00
        14 00 02 80 08 00 02 00 00 00 00 10 08 00 01 00
        00 00 00 01 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 00 0c 00 03 80 05 00 01 00 06 00 00 00
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 02 08 00 04 00
        00 00 00 02 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 00 0c 00 03 80 06 00 01 00 1f 90 00 00
        34 00 01 80 0b 00 01 00 6e 75 6d 67 65 6e 00 00
        24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 00 08 00 04 00
        00 00 00 00 38 00 01 80 0b 00 01 00 6c 6f 6f 6b
        75 70 00 00 28 00 02 80 08 00 02 00 00 00 00 01
        08 00 03 00 00 00 00 01 0c 00 01 00 5f 5f 6d 61
        70 25 64 00 08 00 04 00 00 00 00 04 30 00 01 80
        08 00 01 00 6e 61 74 00 24 00 02 80 08 00 01 00
        00 00 00 01 08 00 02 00 00 00 00 02 08 00 03 00
        00 00 00 01 08 00 05 00 00 00 00 09 19 00 07 00
        00 13 68 3d 30 31 32 33 34 35 36 37 38 39 61 62
        63 64 65 66 00 00 00 00
        """,
        // NEWCHAIN
        """
        2c 00 00 00 03 0a 01 04 11 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 03 00 73 76 63 2d 6c 6f 63 00
        """,
        // NEWSET
        """
        80 00 00 00 09 0a 01 04 12 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 6d 61 70 25 64 00 08 00 03 00
        00 00 00 0b 08 00 04 00 00 00 00 04 08 00 05 00
        00 00 00 04 08 00 06 00 00 00 01 cd 08 00 07 00
        00 00 00 08 08 00 0a 00 00 00 00 05 0c 00 09 80
        08 00 01 00 00 00 00 01 16 00 0d 00 00 04 01 00
        00 00 01 04 00 00 00 00 06 04 00 00 00 00 00 00
        """,
        // NEWSETELEM
        """
        58 00 00 00 0c 0a 01 04 13 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 5f 5f 6d 61 70 25 64 00 08 00 04 00
        00 00 00 05 24 00 03 80 20 00 01 80 0c 00 01 80
        08 00 01 00 00 00 00 00 10 00 02 80 0c 00 01 00
        0a ff 00 07 14 e9 00 00
        """,
        // NEWRULE
        """
        2c 02 00 00 06 0a 01 0c 14 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0c 00 02 00 73 76 63 2d 6c 6f 63 00 e4 01 04 80
        24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00
        14 00 02 80 08 00 02 00 00 00 00 10 08 00 01 00
        00 00 00 01 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 00 0c 00 03 80 05 00 01 00 11 00 00 00
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 02 08 00 04 00
        00 00 00 02 2c 00 01 80 08 00 01 00 63 6d 70 00
        20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00
        00 00 00 00 0c 00 03 80 06 00 01 00 00 35 00 00
        24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00
        14 00 02 80 08 00 02 00 00 00 00 03 08 00 01 00
        00 00 00 01 4c 00 01 80 0c 00 01 00 62 69 74 77
        69 73 65 00 3c 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 01 08 00 06 00 00 00 00 00
        08 00 03 00 00 00 00 04 0c 00 04 80 08 00 01 00
        ff ff ff fe 0c 00 05 80 08 00 01 00 00 00 00 01
        24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00
        14 00 02 80 08 00 02 00 00 00 00 03 08 00 03 00
        00 00 00 01 34 00 01 80 0b 00 01 00 6e 75 6d 67
        65 6e 00 00 24 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 00
        08 00 04 00 00 00 00 00 38 00 01 80 0b 00 01 00
        6c 6f 6f 6b 75 70 00 00 28 00 02 80 08 00 02 00
        00 00 00 01 08 00 03 00 00 00 00 01 0c 00 01 00
        5f 5f 6d 61 70 25 64 00 08 00 04 00 00 00 00 05
        30 00 01 80 08 00 01 00 6e 61 74 00 24 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 02
        08 00 03 00 00 00 00 01 08 00 05 00 00 00 00 09
        19 00 07 00 00 13 68 3d 66 65 64 63 62 61 39 38
        37 36 35 34 33 32 31 30 00 00 00 00
        """,
        // NEWSETELEM
        """
        80 00 00 00 0c 0a 01 04 15 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        14 00 02 00 70 75 62 6c 69 73 68 65 64 2d 70 6f
        72 74 73 00 08 00 04 00 00 00 00 01 44 00 03 80
        20 00 01 80 10 00 01 80 0c 00 01 00 06 00 00 00
        1f 90 00 00 0c 00 02 80 08 00 01 00 00 01 00 00
        20 00 02 80 10 00 01 80 0c 00 01 00 11 00 00 00
        00 35 00 00 0c 00 02 80 08 00 01 00 01 01 00 00
        """,
        // NEWSETELEM
        """
        98 00 00 00 0c 0a 01 04 16 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        13 00 02 00 73 65 72 76 69 63 65 2d 63 68 61 69
        6e 73 00 00 08 00 04 00 00 00 00 02 5c 00 03 80
        2c 00 01 80 0c 00 01 80 08 00 01 00 00 01 00 00
        1c 00 02 80 18 00 02 80 08 00 01 00 ff ff ff fc
        0c 00 02 00 73 76 63 2d 77 65 62 00 2c 00 02 80
        0c 00 01 80 08 00 01 00 01 01 00 00 1c 00 02 80
        18 00 02 80 08 00 01 00 ff ff ff fc 0c 00 02 00
        73 76 63 2d 6c 6f 63 00
        """,
        // NEWCHAIN
        """
        2c 00 00 00 03 0a 01 04 17 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0a 00 03 00 73 74 61 74 65 00 00 00
        """,
        // NEWRULE
        """
        64 00 00 00 06 0a 01 0c 18 00 00 00 00 00 00 00
        02 00 00 00 09 00 01 00 6d 65 73 68 00 00 00 00
        0a 00 02 00 73 74 61 74 65 00 00 00 18 00 04 80
        14 00 01 80 0c 00 01 00 63 6f 75 6e 74 65 72 00
        04 00 02 80 20 00 07 00 00 1a 73 6b 65 6c 65 74
        6f 6e 3d 30 30 31 31 32 32 33 33 34 34 35 35 36
        36 37 37 00
        """,
        // BATCH_END
        """
        14 00 00 00 11 00 01 00 19 00 00 00 00 00 00 00
        00 00 00 0a
        """,

    ];

    /// <summary>
    /// A task's east-west table (vmap by destination address, dnat to an address from a numgen map, jump) and the
    /// expressions Mesh's layouts may use beyond the sandbox's: masquerade, jhash over a concatenation, ct status:
    ///   table ip t2 {
    ///     map vips { type ipv4_addr : verdict; }
    ///     chain output {
    ///       type nat hook output priority -100; policy accept;
    ///       ip daddr vmap @vips
    ///       ct status &amp; dnat != 0 accept
    ///       meta mark set jhash ip saddr . tcp sport mod 4 seed 0xdeadbeef offset 1
    ///     }
    ///     chain post {
    ///       type nat hook postrouting priority srcnat; policy accept;
    ///       masquerade
    ///     }
    ///     chain vip_x {
    ///       dnat to numgen inc mod 2 map { 0 : 10.0.1.5, 1 : 10.0.1.6 }
    ///       jump vip_y
    ///     }
    ///     chain vip_y {
    ///     }
    ///   }
    ///   add element ip t2 vips { 10.0.0.2 : goto vip_x }
    /// </summary>
    private static readonly string[] Task =
    [
        // BATCH_BEGIN
        """
        14 00 00 00 10 00 01 00 00 00 00 00 00 00 00 00
        00 00 00 0a
        """,
        // NEWTABLE
        """
        24 00 00 00 00 0a 01 00 01 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 08 00 02 00
        00 00 00 00
        """,
        // NEWCHAIN
        """
        4c 00 00 00 03 0a 01 04 02 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0b 00 03 00
        6f 75 74 70 75 74 00 00 08 00 07 00 6e 61 74 00
        08 00 05 00 00 00 00 01 14 00 04 80 08 00 01 00
        00 00 00 03 08 00 02 00 ff ff ff 9c
        """,
        // NEWCHAIN
        """
        4c 00 00 00 03 0a 01 04 03 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 09 00 03 00
        70 6f 73 74 00 00 00 00 08 00 07 00 6e 61 74 00
        08 00 05 00 00 00 00 01 14 00 04 80 08 00 01 00
        00 00 00 04 08 00 02 00 00 00 00 64
        """,
        // NEWCHAIN
        """
        28 00 00 00 03 0a 01 04 04 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 03 00
        76 69 70 5f 78 00 00 00
        """,
        // NEWCHAIN
        """
        28 00 00 00 03 0a 01 04 05 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 03 00
        76 69 70 5f 79 00 00 00
        """,
        // NEWSET
        """
        70 00 00 00 09 0a 01 04 06 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 09 00 02 00
        76 69 70 73 00 00 00 00 08 00 03 00 00 00 00 08
        08 00 04 00 00 00 00 07 08 00 05 00 00 00 00 04
        08 00 06 00 ff ff ff 00 08 00 07 00 00 00 00 00
        08 00 0a 00 00 00 00 01 16 00 0d 00 00 04 02 00
        00 00 01 04 00 00 00 00 06 04 00 00 00 00 00 00
        """,
        // NEWRULE
        """
        98 00 00 00 06 0a 01 0c 07 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0b 00 02 00
        6f 75 74 70 75 74 00 00 70 00 04 80 34 00 01 80
        0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01
        08 00 03 00 00 00 00 10 08 00 04 00 00 00 00 04
        38 00 01 80 0b 00 01 00 6c 6f 6f 6b 75 70 00 00
        28 00 02 80 08 00 02 00 00 00 00 01 08 00 03 00
        00 00 00 00 09 00 01 00 76 69 70 73 00 00 00 00
        08 00 04 00 00 00 00 01
        """,
        // NEWRULE
        """
        f4 00 00 00 06 0a 01 0c 08 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0b 00 02 00
        6f 75 74 70 75 74 00 00 cc 00 04 80 20 00 01 80
        07 00 01 00 63 74 00 00 14 00 02 80 08 00 02 00
        00 00 00 02 08 00 01 00 00 00 00 01 4c 00 01 80
        0c 00 01 00 62 69 74 77 69 73 65 00 3c 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01
        08 00 06 00 00 00 00 00 08 00 03 00 00 00 00 04
        0c 00 04 80 08 00 01 00 20 00 00 00 0c 00 05 80
        08 00 01 00 00 00 00 00 2c 00 01 80 08 00 01 00
        63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 01 0c 00 03 80 08 00 01 00
        00 00 00 00 30 00 01 80 0e 00 01 00 69 6d 6d 65
        64 69 61 74 65 00 00 00 1c 00 02 80 08 00 01 00
        00 00 00 00 10 00 02 80 0c 00 02 80 08 00 01 00
        00 00 00 01
        """,
        // NEWRULE
        """
        54 01 00 00 06 0a 01 0c 09 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0b 00 02 00
        6f 75 74 70 75 74 00 00 2c 01 04 80 24 00 01 80
        09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80
        08 00 02 00 00 00 00 10 08 00 01 00 00 00 00 01
        2c 00 01 80 08 00 01 00 63 6d 70 00 20 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 00
        0c 00 03 80 05 00 01 00 06 00 00 00 34 00 01 80
        0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80
        08 00 01 00 00 00 00 02 08 00 02 00 00 00 00 01
        08 00 03 00 00 00 00 0c 08 00 04 00 00 00 00 04
        34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00
        24 00 02 80 08 00 01 00 00 00 00 0d 08 00 02 00
        00 00 00 02 08 00 03 00 00 00 00 00 08 00 04 00
        00 00 00 02 4c 00 01 80 09 00 01 00 68 61 73 68
        00 00 00 00 3c 00 02 80 08 00 01 00 00 00 00 02
        08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 08
        08 00 04 00 00 00 00 04 08 00 05 00 de ad be ef
        08 00 06 00 00 00 00 01 08 00 07 00 00 00 00 00
        24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00
        14 00 02 80 08 00 02 00 00 00 00 03 08 00 03 00
        00 00 00 01
        """,
        // NEWRULE
        """
        40 00 00 00 06 0a 01 0c 0a 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 09 00 02 00
        70 6f 73 74 00 00 00 00 18 00 04 80 14 00 01 80
        09 00 01 00 6d 61 73 71 00 00 00 00 04 00 02 80
        """,
        // NEWSET
        """
        7c 00 00 00 09 0a 01 04 0b 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0c 00 02 00
        5f 5f 6d 61 70 25 64 00 08 00 03 00 00 00 00 0b
        08 00 04 00 00 00 00 04 08 00 05 00 00 00 00 04
        08 00 06 00 00 00 00 07 08 00 07 00 00 00 00 04
        08 00 0a 00 00 00 00 02 0c 00 09 80 08 00 01 00
        00 00 00 02 16 00 0d 00 00 04 01 00 00 00 01 04
        02 00 00 00 06 04 00 00 00 00 00 00
        """,
        // NEWSETELEM
        """
        6c 00 00 00 0c 0a 01 04 0c 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0c 00 02 00
        5f 5f 6d 61 70 25 64 00 08 00 04 00 00 00 00 02
        3c 00 03 80 1c 00 01 80 0c 00 01 80 08 00 01 00
        00 00 00 00 0c 00 02 80 08 00 01 00 0a 00 01 05
        1c 00 02 80 0c 00 01 80 08 00 01 00 01 00 00 00
        0c 00 02 80 08 00 01 00 0a 00 01 06
        """,
        // NEWRULE
        """
        c0 00 00 00 06 0a 01 0c 0d 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 02 00
        76 69 70 5f 78 00 00 00 98 00 04 80 34 00 01 80
        0b 00 01 00 6e 75 6d 67 65 6e 00 00 24 00 02 80
        08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 02
        08 00 03 00 00 00 00 00 08 00 04 00 00 00 00 00
        38 00 01 80 0b 00 01 00 6c 6f 6f 6b 75 70 00 00
        28 00 02 80 08 00 02 00 00 00 00 01 08 00 03 00
        00 00 00 01 0c 00 01 00 5f 5f 6d 61 70 25 64 00
        08 00 04 00 00 00 00 02 28 00 01 80 08 00 01 00
        6e 61 74 00 1c 00 02 80 08 00 01 00 00 00 00 01
        08 00 02 00 00 00 00 02 08 00 03 00 00 00 00 01
        """,
        // NEWRULE
        """
        68 00 00 00 06 0a 01 0c 0e 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 02 00
        76 69 70 5f 78 00 00 00 40 00 04 80 3c 00 01 80
        0e 00 01 00 69 6d 6d 65 64 69 61 74 65 00 00 00
        28 00 02 80 08 00 01 00 00 00 00 00 1c 00 02 80
        18 00 02 80 08 00 01 00 ff ff ff fd 0a 00 02 00
        76 69 70 5f 79 00 00 00
        """,
        // NEWSETELEM
        """
        60 00 00 00 0c 0a 01 04 0f 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 09 00 02 00
        76 69 70 73 00 00 00 00 08 00 04 00 00 00 00 01
        30 00 03 80 2c 00 01 80 0c 00 01 80 08 00 01 00
        0a 00 00 02 1c 00 02 80 18 00 02 80 08 00 01 00
        ff ff ff fc 0a 00 02 00 76 69 70 5f 78 00 00 00
        """,
        // BATCH_END
        """
        14 00 00 00 11 00 01 00 10 00 00 00 00 00 00 00
        00 00 00 0a
        """,

    ];

    /// <summary>
    /// Deletes, after the batch above:
    ///   delete element ip t2 vips { 10.0.0.2 }
    ///   flush chain ip t2 vip_x
    ///   delete chain ip t2 vip_y
    ///   flush map ip t2 vips
    ///   delete table ip t2
    /// </summary>
    private static readonly string[] Deletes =
    [
        // BATCH_BEGIN
        """
        14 00 00 00 10 00 01 00 00 00 00 00 00 00 00 00
        00 00 00 0a
        """,
        // DELSETELEM
        """
        3c 00 00 00 0e 0a 01 00 01 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 09 00 02 00
        76 69 70 73 00 00 00 00 14 00 03 80 10 00 01 80
        0c 00 01 80 08 00 01 00 0a 00 00 02
        """,
        // DELRULE
        """
        28 00 00 00 08 0a 01 00 02 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 02 00
        76 69 70 5f 78 00 00 00
        """,
        // DELCHAIN
        """
        28 00 00 00 05 0a 01 00 03 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00 0a 00 03 00
        76 69 70 5f 79 00 00 00
        """,
        // DELSETELEM
        """
        28 00 00 00 0e 0a 01 00 04 00 00 00 00 00 00 00
        02 00 00 00 09 00 02 00 76 69 70 73 00 00 00 00
        07 00 01 00 74 32 00 00
        """,
        // DELTABLE
        """
        1c 00 00 00 02 0a 01 00 05 00 00 00 00 00 00 00
        02 00 00 00 07 00 01 00 74 32 00 00
        """,
        // BATCH_END
        """
        14 00 00 00 11 00 01 00 06 00 00 00 00 00 00 00
        00 00 00 0a
        """,

    ];

    [Fact]
    public void Sandbox_table_batch_is_the_one_nft_sends()
    {
        AssertBatch(Sandbox, NfTablesSandboxLayout.Batch(NfTablesSandboxLayout.TwoServices));
    }

    [Fact]
    public void Task_table_batch_is_the_one_nft_sends()
    {
        AssertBatch(Task, TaskTable());
    }

    /// <summary>The task table above through the library (also committed by the kernel tests).</summary>
    internal static NfTablesBatch TaskTable()
    {
        const Family ip = Family.Ip;
        var b = new NfTablesBatch();
        b.AddTable(new Table(ip, "t2"));
        b.AddChain(new Chain(ip, "t2", "output", new BaseChain("nat", Hook.Output, -100)));
        b.AddChain(new Chain(ip, "t2", "post", new BaseChain("nat", Hook.Postrouting, BaseChain.PrioritySrcNat)));
        b.AddChain(new Chain(ip, "t2", "vip_x"));
        b.AddChain(new Chain(ip, "t2", "vip_y"));
        b.AddSet(new Set(ip, "t2", "vips", SetDataType.Ipv4Address, SetFlags.Map)
        {
            DataType = SetDataType.Verdict,
            UserData = new NftData(Hex.Parse("000402000000010400000000060400000000")),
        });
        b.AddRule(new Rule(ip, "t2", "output", [new Payload(PayloadBase.Network, 16, 4), new Lookup("vips", Registers.R1, Registers.Verdict)]));
        b.AddRule(new Rule(ip, "t2", "output",
        [
            new Ct(CtKey.Status),
            new Bitwise(4, NftData.U32(0x20), NftData.U32(0)),
            new Cmp(CmpOp.Neq, NftData.U32(0)),
            new VerdictExpression(Verdict.Accept),
        ]));
        b.AddRule(new Rule(ip, "t2", "output",
        [
            new Meta(MetaKey.L4Proto),
            new Cmp(CmpOp.Eq, NftData.U8(6)),
            new Payload(PayloadBase.Network, 12, 4, Registers.R2),
            new Payload(PayloadBase.Transport, 0, 2, Registers.R32(5)),
            new JHash(Registers.R2, 8, 4, 0xdeadbeef, Offset: 1),
            new MetaSet(MetaKey.Mark),
        ]));
        b.AddRule(new Rule(ip, "t2", "post", [new Masquerade()]));
        b.AddSet(new Set(ip, "t2", "__map%d", SetDataType.Integer32, SetFlags.Anonymous | SetFlags.Constant | SetFlags.Map)
        {
            DataType = SetDataType.Ipv4Address,
            Size = 2,
            UserData = new NftData(Hex.Parse("000401000000010402000000060400000000")),
        });
        b.AddElements(ip, "t2", "__map%d", [new SetElement(NftData.U32(0), NftData.Ipv4("10.0.1.5")), new SetElement(NftData.U32(1), NftData.Ipv4("10.0.1.6"))]);
        b.AddRule(new Rule(ip, "t2", "vip_x", [new Numgen(2), new Lookup("__map%d", Registers.R1, Registers.R1), new Nat(NatType.Dnat, ip)]));
        b.AddRule(new Rule(ip, "t2", "vip_x", [new VerdictExpression(Verdict.Jump("vip_y"))]));
        b.AddElements(ip, "t2", "vips", [new SetElement(NftData.Ipv4("10.0.0.2"), Verdict: Verdict.Goto("vip_x"))]);
        return b;
    }

    [Fact]
    public void Delete_batch_is_the_one_nft_sends()
    {
        const Family ip = Family.Ip;
        var b = new NfTablesBatch()
            .DeleteElements(ip, "t2", "vips", [new SetElement(NftData.Ipv4("10.0.0.2"))])
            .FlushChain(ip, "t2", "vip_x")
            .DeleteChain(ip, "t2", "vip_y")
            .FlushSet(ip, "t2", "vips")
            .DeleteTable(ip, "t2");
        AssertBatch(Deletes, b);
    }

    [Fact]
    public void Generation_request_is_the_one_mesh_sent_before()
    {
        // NFT_MSG_GETGEN as NetlinkNftGeneration (Mesh.Ingress) writes it: REQUEST|ACK, nfgenmsg AF_UNSPEC.
        var w = new NetlinkWriter();
        NfTablesCodec.GetGeneration(w, 1);
        Assert.Equal("14000000100a0500010000000000000000000000", Hex.Format(w.WrittenSpan));
    }

    [Fact]
    public void Elements_are_split_so_no_list_outgrows_an_attribute()
    {
        // A goto "c" element is 40 bytes: 1,500 per 60,000-byte message.
        var many = Enumerable.Range(0, 4000).Select(i => new SetElement(NftData.U32((uint)i), Verdict: Verdict.Goto("c"))).ToArray();
        var b = new NfTablesBatch().AddElements(Family.Ip, "t", "m", many);
        Assert.Equal(3, b.Count);
        Assert.Contains("(1000 elements from #3000)", b.Describe(2), StringComparison.Ordinal);
        Assert.Equal(5, NetlinkDecoder.ParseMessages(b.Build(0)).Count);
        // Long chain names: fewer per message, every message still under the attribute's 64 KiB.
        var chain = new string('c', 250);
        var big = new NfTablesBatch().AddElements(Family.Ip, "t", "m", Enumerable.Range(0, 1000).Select(i => new SetElement(NftData.U32((uint)i), Verdict: Verdict.Goto(chain))).ToArray());
        Assert.Equal(5, big.Count);
        Assert.All(NetlinkDecoder.ParseMessages(big.Build(0)), m => Assert.True(m.Payload.Length < 65536));
    }

    [Fact]
    public void Bad_objects_are_refused_naming_them_and_leave_the_batch_as_it_was()
    {
        var b = new NfTablesBatch().AddTable(new Table(Family.Ip, "t"));
        var before = b.Build(0);
        var e = Assert.Throws<ArgumentException>(() => b.AddRule(new Rule(Family.Ip, "t", "c", [new VerdictExpression(new Verdict(VerdictCode.Jump))])));
        Assert.Contains("add rule ip t c", e.Message, StringComparison.Ordinal);
        Assert.Contains("needs chain", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => b.AddChain(new Chain(Family.Ip, "t", "")));
        Assert.Throws<ArgumentException>(() => b.AddChain(new Chain(Family.Ip, "t", "a\0b")));
        Assert.Throws<ArgumentException>(() => b.AddSet(new Set(Family.Ip, "t", "m", SetDataType.Mark, SetFlags.Map)));
        Assert.Throws<ArgumentException>(() => b.AddRule(new Rule(Family.Ip, "t", "c", [new Bitwise(4, NftData.U8(1), NftData.U32(0))])));
        Assert.Equal(1, b.Count);
        Assert.Equal(before, b.Build(0));
    }
}
