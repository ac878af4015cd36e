using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs.Codec;
using Mesh.Ipvs.Netlink;

namespace Mesh.Ipvs.Tests;

/// <summary>Kernel replies written by hand as ip_vs_genl_fill_service/_dest (net/netfilter/ipvs/ip_vs_ctl.c) emit them.</summary>
public class DecodeTests
{
    // A dump datagram: one NEW_SERVICE message (NLM_F_MULTI) followed by NLMSG_DONE.
    internal const string ServiceDumpDatagram = """
        a4 00 00 00  20 00  02 00  05 00 00 00  00 00 00 00   // len 164, family 0x20, NLM_F_MULTI, seq 5
        01 01 00 00                                         // IPVS_CMD_NEW_SERVICE
        90 00 01 00                                         // IPVS_CMD_ATTR_SERVICE (kernel: no NLA_F_NESTED), len 144
          06 00 01 00  02 00 00 00                          // AF_INET
          06 00 02 00  11 00 00 00                          // UDP (17)
          14 00 03 00  c0 a8 01 02 00 00 00 00 00 00 00 00 00 00 00 00 // 192.168.1.2
          06 00 04 00  00 35 00 00                          // port 53
          08 00 06 00  77 72 72 00                          // "wrr"
          0c 00 07 00  03 00 00 00  ff ff ff ff             // PERSISTENT | HASHED
          08 00 08 00  b4 00 00 00                          // timeout 180
          08 00 09 00  ff ff 00 00                          // netmask 255.255.0.0
          3c 00 0a 00                                       // IPVS_SVC_ATTR_STATS len 60
            08 00 01 00  05 00 00 00                        // conns 5 (u32)
            08 00 02 00  0a 00 00 00                        // inpkts 10
            08 00 03 00  09 00 00 00                        // outpkts 9
            0c 00 04 00  e8 03 00 00 00 00 00 00            // inbytes 1000 (u64)
            0c 00 05 00  84 03 00 00 00 00 00 00            // outbytes 900 (u64)
            08 00 06 00  01 00 00 00                        // cps 1
        14 00 00 00  03 00  02 00  05 00 00 00  00 00 00 00   // NLMSG_DONE, NLM_F_MULTI, seq 5
        00 00 00 00                                         // error 0
        """;

    [Fact]
    public void ServiceDump_Decodes_And_StripsHashed()
    {
        var msgs = NetlinkDecoder.ParseMessages(Hex.Parse(ServiceDumpDatagram));
        Assert.Equal(2, msgs.Count);
        Assert.True(msgs[1].IsDone);
        Assert.Equal(0, NetlinkDecoder.ParseDoneErrno(msgs[1]));
        var s = IpvsReplies.Service(msgs[0], "test");
        Assert.Equal(AddressFamily.InterNetwork, s.AddressFamily);
        Assert.Equal(IpvsProtocol.Udp, s.Protocol);
        Assert.Equal(IPAddress.Parse("192.168.1.2"), s.Address);
        Assert.Equal(53, s.Port);
        Assert.Equal("wrr", s.Scheduler);
        Assert.Equal(IpvsServiceFlags.Persistent, s.Flags);
        Assert.Equal(180u, s.Timeout);
        Assert.Equal(0xFFFF0000u, s.Netmask);
        Assert.Equal(new IpvsStats(5, 10, 9, 1000, 900, 1, 0, 0, 0, 0), s.Stats);
    }

    [Fact]
    public void DestinationReply_Decodes()
    {
        var bytes = Hex.Parse("""
            8c 00 00 00  20 00  02 00  06 00 00 00  00 00 00 00   // len 140
            01 01 00 00                                         // cmd (kernel sends IPVS_CMD_NEW_DEST=5; any cmd is accepted)
            78 00 02 00                                         // IPVS_CMD_ATTR_DEST len 120
              14 00 01 00  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 05 // 2001:db8::5
              06 00 02 00  1f 90 00 00                        // port 8080
              08 00 03 00  03 00 00 00                        // DROUTE
              08 00 04 00  07 00 00 00                        // weight 7
              08 00 05 00  00 00 00 00
              08 00 06 00  00 00 00 00
              08 00 07 00  02 00 00 00                        // active 2
              08 00 08 00  03 00 00 00                        // inactive 3
              08 00 09 00  00 00 00 00
              06 00 0b 00  0a 00 00 00                        // ADDR_FAMILY AF_INET6
              05 00 0d 00  00 00 00 00                        // TUN_TYPE (ignored unless tunnel)
              06 00 0e 00  00 00 00 00
              06 00 0f 00  00 00 00 00
            """);
        var m = Assert.Single(NetlinkDecoder.ParseMessages(bytes));
        var d = IpvsReplies.Destination(m, AddressFamily.InterNetworkV6, "test");
        Assert.Equal(IPAddress.Parse("2001:db8::5"), d.Address);
        Assert.Equal(8080, d.Port);
        Assert.Equal(ForwardingMethod.DirectRoute, d.ForwardingMethod);
        Assert.Equal(7, d.Weight);
        Assert.Equal(2u, d.ActiveConnections);
        Assert.Equal(3u, d.InactiveConnections);
        Assert.Null(d.Stats);
    }

    [Fact]
    public void InfoAndConfigReplies_Decode()
    {
        var info = Hex.Parse("""
            24 00 00 00  20 00  00 00  01 00 00 00  00 00 00 00
            0e 01 00 00                                         // IPVS_CMD_SET_INFO (reply to GET_INFO)
            08 00 01 00  01 02 01 00                            // version 0x010201
            08 00 02 00  00 10 00 00                            // conn tab size 4096
            """);
        var i = IpvsReplies.Info(NetlinkDecoder.ParseMessages(info)[0], "test");
        Assert.Equal("1.2.1", i.VersionString);
        Assert.Equal(4096u, i.ConnectionTableSize);

        var cfg = Hex.Parse("""
            2c 00 00 00  20 00  00 00  01 00 00 00  00 00 00 00
            0c 01 00 00
            08 00 04 00  84 03 00 00
            08 00 05 00  78 00 00 00
            08 00 06 00  2c 01 00 00
            """);
        Assert.Equal(new IpvsTimeouts(900, 120, 300), IpvsReplies.Timeouts(NetlinkDecoder.ParseMessages(cfg)[0], "test"));
    }

    [Fact]
    public void ErrorWithExtAck_DecodesErrnoAndMessage()
    {
        var bytes = Hex.Parse("""
            30 00 00 00  02 00  00 03  07 00 00 00  00 00 00 00   // NLMSG_ERROR, NLM_F_CAPPED|NLM_F_ACK_TLVS, len 48
            ef ff ff ff                                         // error -17
            68 00 00 00  20 00  05 00  07 00 00 00  00 00 00 00   // echoed request header only (capped)
            09 00 01 00  62 6f 6f 6d 00 00 00 00                // NLMSGERR_ATTR_MSG "boom"
            """);
        var m = Assert.Single(NetlinkDecoder.ParseMessages(bytes));
        var e = NetlinkDecoder.ParseError(m);
        Assert.Equal(17, e.Errno);
        Assert.Equal(7u, e.OriginalSequence);
        Assert.Equal("boom", e.Message);
        var ex = new NetlinkException("IPVS_CMD_NEW_SERVICE", e.Errno);
        Assert.Equal("IPVS_CMD_NEW_SERVICE failed: EEXIST (17)", ex.Message);
        Assert.True(ex.AlreadyExists);
        Assert.Equal("IPVS_CMD_DEL_DEST failed: ENOENT (2): boom", new NetlinkException("IPVS_CMD_DEL_DEST", 2, "boom").Message);
    }

    [Fact]
    public void FamilyReply_Decodes()
    {
        var bytes = Hex.Parse("""
            38 00 00 00  10 00  00 00  01 00 00 00  00 00 00 00   // len 56
            01 02 00 00                                         // CTRL_CMD_NEWFAMILY v2
            09 00 02 00  49 50 56 53 00 00 00 00                // CTRL_ATTR_FAMILY_NAME "IPVS"
            06 00 01 00  23 00 00 00                            // CTRL_ATTR_FAMILY_ID 0x23
            08 00 03 00  01 00 00 00                            // CTRL_ATTR_VERSION 1
            08 00 05 00  03 00 00 00                            // CTRL_ATTR_MAXATTR 3
            """);
        var f = GenericNetlink.ParseFamily(NetlinkDecoder.ParseMessages(bytes)[0]);
        Assert.Equal(new GenericNetlinkFamily("IPVS", 0x23, 1, 0, 3), f);
    }
}
