using System.Net;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.Conntrack;

namespace Mesh.Ipvs.Tests;

/// <summary>
/// The ctnetlink codec against conntrack-tools 1.4.7 and kernel 6.18, both captured on this machine in a throw-away
/// namespace with <c>strace -e write=all -e read=all conntrack -L</c>: the dump request conntrack sends, and the entry
/// the kernel answered for a TCP connection from 10.77.0.1 to 10.77.0.1:8080 that an nft output-hook rule DNATed to
/// 10.77.0.2:9000 (conntrack printed it as <c>tcp 6 431986 ESTABLISHED src=10.77.0.1 dst=10.77.0.1 sport=48560
/// dport=8080 src=10.77.0.2 dst=10.77.0.1 sport=9000 dport=48560 [ASSURED]</c>).
/// </summary>
public sealed class ConntrackCodecTests
{
    private const string ConntrackDumpRequest = """
        14 00 00 00 01 01 01 03  d1 e0 0d 6b 00 00 00 00  // nlmsghdr: len 20, CTNETLINK<<8|CT_GET, REQUEST|DUMP, seq
        00 00 00 00                                       // nfgenmsg: AF_UNSPEC, V0, res_id 0
        """;

    private const string KernelEntry = """
        d4 00 00 00 00 01 02 00  d1 e0 0d 6b 34 7f 00 00
        02 00 00 00 34 00 01 80  14 00 01 80 08 00 01 00
        0a 4d 00 01 08 00 02 00  0a 4d 00 01 1c 00 02 80
        05 00 01 00 06 00 00 00  06 00 02 00 bd b0 00 00
        06 00 03 00 1f 90 00 00  34 00 02 80 14 00 01 80
        08 00 01 00 0a 4d 00 02  08 00 02 00 0a 4d 00 01
        1c 00 02 80 05 00 01 00  06 00 00 00 06 00 02 00
        23 28 00 00 06 00 03 00  bd b0 00 00 08 00 03 00
        00 00 01 ae 08 00 08 00  00 00 00 00 08 00 0c 00
        ee b3 d2 08 08 00 0b 00  00 00 00 01 08 00 07 00
        00 06 97 72 30 00 04 80  2c 00 01 80 05 00 01 00
        03 00 00 00 05 00 02 00  0a 00 00 00 05 00 03 00
        0a 00 00 00 06 00 04 00  23 00 00 00 06 00 05 00
        23 00 00 00
        """;

    [Fact]
    public void The_dump_request_is_the_one_conntrack_sends()
    {
        var w = new NetlinkWriter();
        ConntrackCodec.Dump(w, 0x6b0de0d1);
        Assert.Equal(Hex.Format(Hex.Parse(ConntrackDumpRequest)), Hex.Format(w.WrittenSpan));
    }

    [Fact]
    public void A_DNATed_entry_from_the_kernel_decodes_with_its_translated_destination()
    {
        var entry = ConntrackCodec.ParseEntry(Assert.Single(NetlinkDecoder.ParseMessages(Hex.Parse(KernelEntry))), "test");

        Assert.Equal(new ConntrackTuple(IPAddress.Parse("10.77.0.1"), IPAddress.Parse("10.77.0.1"), 6, 48560, 8080), entry.Original);
        Assert.Equal(new ConntrackTuple(IPAddress.Parse("10.77.0.2"), IPAddress.Parse("10.77.0.1"), 6, 9000, 48560), entry.Reply);
        Assert.Equal(
            ConntrackStatus.SeenReply | ConntrackStatus.Assured | ConntrackStatus.Confirmed | ConntrackStatus.DestinationNat | ConntrackStatus.SourceNatDone | ConntrackStatus.DestinationNatDone,
            entry.Status);
        Assert.Equal(TcpConntrackState.Established, entry.TcpState);
        Assert.Equal(0xeeb3d208u, entry.Id);
        Assert.Equal(new IPEndPoint(IPAddress.Parse("10.77.0.2"), 9000), entry.DnatDestination);
        Assert.Null((entry with { Status = ConntrackStatus.Confirmed }).DnatDestination);
    }

    [Fact]
    public void Malformed_entries_are_refused_with_what_is_wrong()
    {
        var bytes = Hex.Parse(KernelEntry);
        var message = Assert.Single(NetlinkDecoder.ParseMessages(bytes));

        // No reply tuple: its attribute type becomes one the codec does not read.
        var noReply = (byte[])bytes.Clone();
        noReply[0x4a] = 0x0f;
        var e = Assert.Throws<NetlinkProtocolException>(() => ConntrackCodec.ParseEntry(Assert.Single(NetlinkDecoder.ParseMessages(noReply)), "test"));
        Assert.Contains("CTA_TUPLE_REPLY", e.Message, StringComparison.Ordinal);

        // An IPv4 address two bytes short: the nested length says 6 instead of 8.
        var shortAddress = (byte[])bytes.Clone();
        shortAddress[0x1c] = 0x06;
        e = Assert.Throws<NetlinkProtocolException>(() => ConntrackCodec.ParseEntry(Assert.Single(NetlinkDecoder.ParseMessages(shortAddress)), "test"));
        Assert.Contains("CTA_IP_V4_SRC", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<NetlinkProtocolException>(() => ConntrackCodec.ParseEntry(message with { Type = 0x0102 }, "test"));
        Assert.Contains("expected 0x0100", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NetlinkProtocolException>(() => ConntrackCodec.ParseEntry(message with { Payload = message.Payload[..3] }, "test"));
        Assert.Contains("shorter than nfgenmsg", e.Message, StringComparison.Ordinal);
    }
}
