using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// Expected bytes written by hand from the layouts in /usr/include/linux/netlink.h (struct nlmsghdr: u32 len,
/// u16 type, u16 flags, u32 seq, u32 pid — host order), genetlink.h (struct genlmsghdr: u8 cmd, u8 version,
/// u16 reserved), and ip_vs.h (IPVS_CMD_*, IPVS_CMD_ATTR_*, IPVS_SVC_ATTR_*, IPVS_DEST_ATTR_*).
/// struct nlattr is u16 len (header + payload, unpadded), u16 type; payloads are padded to 4 bytes.
/// Nested attributes carry NLA_F_NESTED (0x8000). The family id used here is 0x0020.
/// </summary>
public class GoldenBytesTests
{
    private const ushort Fam = 0x20;

    // Service attributes shared by several expectations: TCP 10.0.0.1:80 (identifying part only).
    private const string SvcKeyTcp10001p80 = """
        06 00 01 00  02 00 00 00                    // IPVS_SVC_ATTR_AF = AF_INET (2)
        06 00 02 00  06 00 00 00                    // IPVS_SVC_ATTR_PROTOCOL = IPPROTO_TCP (6)
        14 00 03 00  0a 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 // IPVS_SVC_ATTR_ADDR nf_inet_addr 10.0.0.1
        06 00 04 00  00 50 00 00                    // IPVS_SVC_ATTR_PORT __be16 80
        """;

    private static IpvsService Tcp80 => IpvsService.Tcp(IPAddress.Parse("10.0.0.1"), 80);

    private static void AssertBytes(string expectedHex, NetlinkWriter w)
    {
        Assert.Equal(Hex.Format(Hex.Parse(expectedHex)), Hex.Format(w.WrittenSpan));
    }

    [Fact]
    public void CtrlGetFamily_IPVS()
    {
        var w = new NetlinkWriter();
        GenericNetlink.BuildGetFamily(w, "IPVS", 1);
        AssertBytes("""
            20 00 00 00  10 00  05 00  01 00 00 00  00 00 00 00   // nlmsghdr len 32, GENL_ID_CTRL, REQUEST|ACK, seq 1
            03 01 00 00                                         // genlmsghdr CTRL_CMD_GETFAMILY v1
            09 00 02 00  49 50 56 53 00 00 00 00                // CTRL_ATTR_FAMILY_NAME "IPVS\0" + 3 pad
            """, w);
    }

    [Fact]
    public void NewService_Tcp_Ipv4()
    {
        var w = new NetlinkWriter();
        IpvsRequests.Service(w, Fam, IPVS_CMD_NEW_SERVICE, 7, Tcp80);
        AssertBytes($"""
            68 00 00 00  20 00  05 00  07 00 00 00  00 00 00 00   // len 104, family 0x20, REQUEST|ACK, seq 7
            01 01 00 00                                         // IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION 1
            54 00 01 80                                         // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED, len 84
            {SvcKeyTcp10001p80}
            07 00 06 00  72 72 00 00                            // IPVS_SVC_ATTR_SCHED_NAME "rr\0" + pad
            0c 00 07 00  00 00 00 00  ff ff ff ff               // IPVS_SVC_ATTR_FLAGS ip_vs_flags: flags 0, mask ~0
            08 00 08 00  00 00 00 00                            // IPVS_SVC_ATTR_TIMEOUT 0
            08 00 09 00  ff ff ff ff                            // IPVS_SVC_ATTR_NETMASK __be32 255.255.255.255
            """, w);
    }

    [Fact]
    public void SetService_Persistent_Sh_WithFlags()
    {
        var s = Tcp80 with
        {
            Scheduler = "sh",
            Flags = IpvsServiceFlags.Persistent | IpvsServiceFlags.HashFallback | IpvsServiceFlags.HashPort,
            Timeout = 300,
            Netmask = 0xFFFFFF00,
        };
        var w = new NetlinkWriter();
        IpvsRequests.Service(w, Fam, IPVS_CMD_SET_SERVICE, 8, s);
        AssertBytes($"""
            68 00 00 00  20 00  05 00  08 00 00 00  00 00 00 00
            02 01 00 00                                         // IPVS_CMD_SET_SERVICE
            54 00 01 80
            {SvcKeyTcp10001p80}
            07 00 06 00  73 68 00 00                            // "sh\0"
            0c 00 07 00  19 00 00 00  ff ff ff ff               // PERSISTENT 0x1 | SCHED1 0x8 | SCHED2 0x10 = 0x19
            08 00 08 00  2c 01 00 00                            // timeout 300
            08 00 09 00  ff ff ff 00                            // netmask 255.255.255.0 (network order)
            """, w);
    }

    [Fact]
    public void NewService_Ipv6_Wlc()
    {
        var s = IpvsService.Tcp(IPAddress.Parse("2001:db8::1"), 443, "wlc");
        var w = new NetlinkWriter();
        IpvsRequests.Service(w, Fam, IPVS_CMD_NEW_SERVICE, 9, s);
        AssertBytes("""
            68 00 00 00  20 00  05 00  09 00 00 00  00 00 00 00   // len 104
            01 01 00 00
            54 00 01 80                                         // nested len 84
            06 00 01 00  0a 00 00 00                            // AF_INET6 (10)
            06 00 02 00  06 00 00 00                            // TCP
            14 00 03 00  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // 2001:db8::1
            06 00 04 00  01 bb 00 00                            // port 443
            08 00 06 00  77 6c 63 00                            // "wlc\0" (no pad needed)
            0c 00 07 00  00 00 00 00  ff ff ff ff
            08 00 08 00  00 00 00 00
            08 00 09 00  80 00 00 00                            // IPv6 netmask = prefix length 128, host order
            """, w);
    }

    [Fact]
    public void DelService_FirewallMark()
    {
        var w = new NetlinkWriter();
        IpvsRequests.Service(w, Fam, IPVS_CMD_DEL_SERVICE, 10, IpvsService.ForFirewallMark(0x102));
        AssertBytes("""
            28 00 00 00  20 00  05 00  0a 00 00 00  00 00 00 00   // len 40
            03 01 00 00                                         // IPVS_CMD_DEL_SERVICE
            14 00 01 80                                         // nested len 20
            06 00 01 00  02 00 00 00                            // AF_INET
            08 00 05 00  02 01 00 00                            // IPVS_SVC_ATTR_FWMARK 0x102
            """, w);
    }

    [Fact]
    public void NewService_FirewallMark_Mh_Ipv6()
    {
        var s = IpvsService.ForFirewallMark(7, AddressFamily.InterNetworkV6, "mh") with { Flags = IpvsServiceFlags.HashPort };
        var w = new NetlinkWriter();
        IpvsRequests.Service(w, Fam, IPVS_CMD_NEW_SERVICE, 11, s);
        AssertBytes("""
            4c 00 00 00  20 00  05 00  0b 00 00 00  00 00 00 00   // len 76
            01 01 00 00
            38 00 01 80                                         // nested len 56
            06 00 01 00  0a 00 00 00                            // AF_INET6
            08 00 05 00  07 00 00 00                            // fwmark 7
            07 00 06 00  6d 68 00 00                            // "mh\0"
            0c 00 07 00  10 00 00 00  ff ff ff ff               // SCHED2 (mh-port)
            08 00 08 00  00 00 00 00
            08 00 09 00  80 00 00 00
            """, w);
    }

    [Fact]
    public void NewDest_Masq_Weight3()
    {
        var d = new IpvsDestination(IPAddress.Parse("10.255.0.5"), 8080) { Weight = 3, UpperThreshold = 100, LowerThreshold = 10 };
        var w = new NetlinkWriter();
        IpvsRequests.Destination(w, Fam, IPVS_CMD_NEW_DEST, 12, Tcp80, d);
        AssertBytes($"""
            8c 00 00 00  20 00  05 00  0c 00 00 00  00 00 00 00   // len 140
            05 01 00 00                                         // IPVS_CMD_NEW_DEST
            30 00 01 80                                         // IPVS_CMD_ATTR_SERVICE nested len 48 (key only)
            {SvcKeyTcp10001p80}
            48 00 02 80                                         // IPVS_CMD_ATTR_DEST nested len 72
            14 00 01 00  0a ff 00 05 00 00 00 00 00 00 00 00 00 00 00 00 // IPVS_DEST_ATTR_ADDR 10.255.0.5
            06 00 02 00  1f 90 00 00                            // IPVS_DEST_ATTR_PORT 8080
            06 00 0b 00  02 00 00 00                            // IPVS_DEST_ATTR_ADDR_FAMILY AF_INET
            08 00 03 00  00 00 00 00                            // IPVS_DEST_ATTR_FWD_METHOD IP_VS_CONN_F_MASQ
            08 00 04 00  03 00 00 00                            // IPVS_DEST_ATTR_WEIGHT 3
            08 00 05 00  64 00 00 00                            // IPVS_DEST_ATTR_U_THRESH 100
            08 00 06 00  0a 00 00 00                            // IPVS_DEST_ATTR_L_THRESH 10
            """, w);
    }

    [Fact]
    public void SetDest_DirectRoute()
    {
        var d = new IpvsDestination(IPAddress.Parse("10.255.0.5"), 80) { ForwardingMethod = ForwardingMethod.DirectRoute, Weight = 0 };
        var w = new NetlinkWriter();
        IpvsRequests.Destination(w, Fam, IPVS_CMD_SET_DEST, 13, Tcp80, d);
        AssertBytes($"""
            8c 00 00 00  20 00  05 00  0d 00 00 00  00 00 00 00
            06 01 00 00                                         // IPVS_CMD_SET_DEST
            30 00 01 80
            {SvcKeyTcp10001p80}
            48 00 02 80
            14 00 01 00  0a ff 00 05 00 00 00 00 00 00 00 00 00 00 00 00
            06 00 02 00  00 50 00 00
            06 00 0b 00  02 00 00 00
            08 00 03 00  03 00 00 00                            // IP_VS_CONN_F_DROUTE
            08 00 04 00  00 00 00 00                            // weight 0 (quiesced)
            08 00 05 00  00 00 00 00
            08 00 06 00  00 00 00 00
            """, w);
    }

    [Fact]
    public void NewDest_GueTunnel()
    {
        var d = new IpvsDestination(IPAddress.Parse("10.255.0.5"), 80)
        {
            ForwardingMethod = ForwardingMethod.Tunnel,
            TunnelType = TunnelType.Gue,
            TunnelPort = 6080,
            TunnelFlags = TunnelFlags.Checksum,
        };
        var w = new NetlinkWriter();
        IpvsRequests.Destination(w, Fam, IPVS_CMD_NEW_DEST, 14, Tcp80, d);
        AssertBytes($"""
            a4 00 00 00  20 00  05 00  0e 00 00 00  00 00 00 00   // len 164
            05 01 00 00
            30 00 01 80
            {SvcKeyTcp10001p80}
            60 00 02 80                                         // nested len 96
            14 00 01 00  0a ff 00 05 00 00 00 00 00 00 00 00 00 00 00 00
            06 00 02 00  00 50 00 00
            06 00 0b 00  02 00 00 00
            08 00 03 00  02 00 00 00                            // IP_VS_CONN_F_TUNNEL
            08 00 04 00  01 00 00 00                            // weight 1
            08 00 05 00  00 00 00 00
            08 00 06 00  00 00 00 00
            05 00 0d 00  01 00 00 00                            // IPVS_DEST_ATTR_TUN_TYPE u8 GUE + 3 pad
            06 00 0e 00  17 c0 00 00                            // IPVS_DEST_ATTR_TUN_PORT __be16 6080
            06 00 0f 00  01 00 00 00                            // IPVS_DEST_ATTR_TUN_FLAGS u16 CSUM
            """, w);
    }

    [Fact]
    public void DelDest_OnlyAddressAndPort()
    {
        var w = new NetlinkWriter();
        IpvsRequests.Destination(w, Fam, IPVS_CMD_DEL_DEST, 15, Tcp80, new IpvsDestination(IPAddress.Parse("10.255.0.5"), 8080));
        AssertBytes($"""
            6c 00 00 00  20 00  05 00  0f 00 00 00  00 00 00 00   // len 108
            07 01 00 00                                         // IPVS_CMD_DEL_DEST
            30 00 01 80
            {SvcKeyTcp10001p80}
            28 00 02 80                                         // nested len 40
            14 00 01 00  0a ff 00 05 00 00 00 00 00 00 00 00 00 00 00 00
            06 00 02 00  1f 90 00 00
            06 00 0b 00  02 00 00 00
            """, w);
    }

    [Fact]
    public void DumpServices_UsesNlmFDump()
    {
        var w = new NetlinkWriter();
        IpvsRequests.DumpServices(w, Fam, 16);
        AssertBytes("""
            14 00 00 00  20 00  01 03  10 00 00 00  00 00 00 00   // REQUEST | NLM_F_DUMP (0x300)
            04 01 00 00                                         // IPVS_CMD_GET_SERVICE
            """, w);
    }

    [Fact]
    public void DumpDestinations_CarriesServiceKey()
    {
        var w = new NetlinkWriter();
        IpvsRequests.DumpDestinations(w, Fam, 17, Tcp80);
        AssertBytes($"""
            44 00 00 00  20 00  01 03  11 00 00 00  00 00 00 00   // len 68
            08 01 00 00                                         // IPVS_CMD_GET_DEST
            30 00 01 80
            {SvcKeyTcp10001p80}
            """, w);
    }

    [Theory]
    [InlineData(IPVS_CMD_FLUSH, "11")]
    [InlineData(IPVS_CMD_GET_INFO, "0f")]
    [InlineData(IPVS_CMD_GET_CONFIG, "0d")]
    [InlineData(IPVS_CMD_ZERO, "10")]
    public void CommandsWithoutAttributes(byte cmd, string cmdHex)
    {
        var w = new NetlinkWriter();
        IpvsRequests.Simple(w, Fam, cmd, 18);
        AssertBytes($"""
            14 00 00 00  20 00  05 00  12 00 00 00  00 00 00 00
            {cmdHex} 01 00 00
            """, w);
    }

    [Fact]
    public void SetConfig_Timeouts()
    {
        var w = new NetlinkWriter();
        IpvsRequests.SetTimeouts(w, Fam, 19, new IpvsTimeouts(900, 120, 300));
        AssertBytes("""
            2c 00 00 00  20 00  05 00  13 00 00 00  00 00 00 00   // len 44
            0c 01 00 00                                         // IPVS_CMD_SET_CONFIG
            08 00 04 00  84 03 00 00                            // IPVS_CMD_ATTR_TIMEOUT_TCP 900
            08 00 05 00  78 00 00 00                            // IPVS_CMD_ATTR_TIMEOUT_TCP_FIN 120
            08 00 06 00  2c 01 00 00                            // IPVS_CMD_ATTR_TIMEOUT_UDP 300
            """, w);
    }

    [Fact]
    public void Batch_OnlyLastMessageAsksForAck_SequencesConsecutive()
    {
        var b = new IpvsBatch()
            .NewService(Tcp80)
            .NewDestination(Tcp80, new IpvsDestination(IPAddress.Parse("10.255.0.5"), 8080))
            .DeleteService(IpvsService.ForFirewallMark(0x102));
        var w = new NetlinkWriter();
        var offsets = b.Encode(w, Fam, 100);
        Assert.Equal(new[] { 0, 104, 244 }, offsets);
        var msgs = NetlinkDecoder.ParseMessages(w.WrittenMemory);
        Assert.Equal(3, msgs.Count);
        Assert.Equal(new uint[] { 100, 101, 102 }, msgs.Select(m => m.Sequence));
        Assert.Equal(
            new[] { NetlinkMessageFlags.Request, NetlinkMessageFlags.Request, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack },
            msgs.Select(m => m.Flags));
        // The last message is byte-identical to DelService_FirewallMark apart from seq and flags.
        Assert.Equal("28000000200005006600000000000000030100001400018006000100020000000800050002010000", Hex.Format(w.WrittenSpan[244..]));
    }
}
