using System.Net;
using static Mesh.Ipvs.Netlink.Conntrack.ConntrackConstants;

namespace Mesh.Ipvs.Netlink.Conntrack;

/// <summary>ctnetlink messages: the dump request (IPCTNL_MSG_CT_GET with NLM_F_DUMP) and the entries it returns.</summary>
public static class ConntrackCodec
{
    /// <summary>
    /// A dump of the namespace's whole conntrack table, as <c>conntrack -L</c> sends it: nfgenmsg { AF_UNSPEC,
    /// NFNETLINK_V0, res_id 0 }, no attributes. Not per family: on kernel 6.18 a dump with nfgen_family AF_INET
    /// returned no entry at all where the unfiltered one returned the table's IPv4 entries (<c>conntrack -L -f ipv4</c>
    /// shows 0 flows beside <c>conntrack -L</c>'s 1), so the reader filters by family itself.
    /// </summary>
    public static void Dump(NetlinkWriter w, uint seq)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.BeginMessage(MessageType(IPCTNL_MSG_CT_GET), NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump, seq);
        w.PutHeader([0, 0, 0, 0]);
        w.EndMessage();
    }

    /// <summary>One entry of a dump (IPCTNL_MSG_CT_NEW). Throws <see cref="NetlinkProtocolException"/> on anything malformed.</summary>
    public static ConntrackEntry ParseEntry(NetlinkMessage m, string operation)
    {
        if (m.Type != MessageType(IPCTNL_MSG_CT_NEW))
        {
            throw new NetlinkProtocolException(operation, $"message type 0x{m.Type:x4}, expected 0x{MessageType(IPCTNL_MSG_CT_NEW):x4}");
        }

        if (m.Payload.Length < NFGENMSG_LEN)
        {
            throw new NetlinkProtocolException(operation, $"ctnetlink message of {m.Payload.Length} payload bytes, shorter than nfgenmsg");
        }

        var a = NetlinkAttributes.Parse(m.Payload[NFGENMSG_LEN..], operation);
        var original = Tuple(a.GetNested(CTA_TUPLE_ORIG, "CTA_TUPLE_ORIG"), "CTA_TUPLE_ORIG");
        var reply = Tuple(a.GetNested(CTA_TUPLE_REPLY, "CTA_TUPLE_REPLY"), "CTA_TUPLE_REPLY");
        var status = (ConntrackStatus)a.GetBe32(CTA_STATUS, "CTA_STATUS");
        TcpConntrackState? tcp = null;
        if (a.GetNestedOrNull(CTA_PROTOINFO)?.GetNestedOrNull(CTA_PROTOINFO_TCP) is { } info && info.Has(CTA_PROTOINFO_TCP_STATE))
        {
            tcp = (TcpConntrackState)info.GetU8(CTA_PROTOINFO_TCP_STATE, "CTA_PROTOINFO_TCP_STATE");
        }

        return new ConntrackEntry(original, reply, status)
        {
            TcpState = tcp,
            Id = a.Has(CTA_ID) ? a.GetBe32(CTA_ID, "CTA_ID") : 0,
        };
    }

    private static ConntrackTuple Tuple(NetlinkAttributes tuple, string what)
    {
        var ip = tuple.GetNested(CTA_TUPLE_IP, what + " CTA_TUPLE_IP");
        var (source, destination) = ip.Has(CTA_IP_V4_SRC)
            ? (Address(ip, CTA_IP_V4_SRC, 4, what + " CTA_IP_V4_SRC"), Address(ip, CTA_IP_V4_DST, 4, what + " CTA_IP_V4_DST"))
            : (Address(ip, CTA_IP_V6_SRC, 16, what + " CTA_IP_V6_SRC"), Address(ip, CTA_IP_V6_DST, 16, what + " CTA_IP_V6_DST"));
        var proto = tuple.GetNested(CTA_TUPLE_PROTO, what + " CTA_TUPLE_PROTO");
        return new ConntrackTuple(
            source,
            destination,
            proto.GetU8(CTA_PROTO_NUM, what + " CTA_PROTO_NUM"),
            proto.Has(CTA_PROTO_SRC_PORT) ? proto.GetBe16(CTA_PROTO_SRC_PORT, what + " CTA_PROTO_SRC_PORT") : (ushort)0,
            proto.Has(CTA_PROTO_DST_PORT) ? proto.GetBe16(CTA_PROTO_DST_PORT, what + " CTA_PROTO_DST_PORT") : (ushort)0);
    }

    private static IPAddress Address(NetlinkAttributes a, ushort type, int size, string what) => new(a.Fixed(type, what, size).Span);
}
