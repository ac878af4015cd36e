using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>
/// Builds complete IPVS generic netlink requests (nlmsghdr + genlmsghdr + attributes), one method per command.
/// Every request except dumps carries NLM_F_ACK unless <c>ack: false</c> (batch members).
/// </summary>
internal static class IpvsRequests
{
    private static void Begin(NetlinkWriter w, ushort family, byte cmd, uint seq, bool ack)
    {
        var flags = NetlinkMessageFlags.Request | (ack ? NetlinkMessageFlags.Ack : 0);
        w.BeginMessage(family, flags, seq);
        w.PutGenlHeader(cmd, IPVS_GENL_VERSION);
    }

    /// <summary>NEW_SERVICE / SET_SERVICE (full) or DEL_SERVICE / GET_SERVICE (key only).</summary>
    public static void Service(NetlinkWriter w, ushort family, byte cmd, uint seq, IpvsService s, bool ack = true)
    {
        Begin(w, family, cmd, seq, ack);
        ServiceCodec.Encode(w, s, full: cmd is IPVS_CMD_NEW_SERVICE or IPVS_CMD_SET_SERVICE);
        w.EndMessage();
    }

    /// <summary>NEW_DEST / SET_DEST (full) or DEL_DEST (address/port only) for service <paramref name="s"/>.</summary>
    public static void Destination(NetlinkWriter w, ushort family, byte cmd, uint seq, IpvsService s, IpvsDestination d, bool ack = true)
    {
        Begin(w, family, cmd, seq, ack);
        ServiceCodec.Encode(w, s, full: false);
        DestinationCodec.Encode(w, d, full: cmd is IPVS_CMD_NEW_DEST or IPVS_CMD_SET_DEST);
        w.EndMessage();
    }

    /// <summary>GET_SERVICE with NLM_F_DUMP: every service.</summary>
    public static void DumpServices(NetlinkWriter w, ushort family, uint seq)
    {
        w.BeginMessage(family, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump, seq);
        w.PutGenlHeader(IPVS_CMD_GET_SERVICE, IPVS_GENL_VERSION);
        w.EndMessage();
    }

    /// <summary>GET_DEST with NLM_F_DUMP: the destinations of one service.</summary>
    public static void DumpDestinations(NetlinkWriter w, ushort family, uint seq, IpvsService s)
    {
        w.BeginMessage(family, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump, seq);
        w.PutGenlHeader(IPVS_CMD_GET_DEST, IPVS_GENL_VERSION);
        ServiceCodec.Encode(w, s, full: false);
        w.EndMessage();
    }

    /// <summary>Commands without attributes: FLUSH, GET_INFO, GET_CONFIG, ZERO (all services).</summary>
    public static void Simple(NetlinkWriter w, ushort family, byte cmd, uint seq, bool ack = true)
    {
        Begin(w, family, cmd, seq, ack);
        w.EndMessage();
    }

    /// <summary>ZERO for one service.</summary>
    public static void Zero(NetlinkWriter w, ushort family, uint seq, IpvsService s)
    {
        Begin(w, family, IPVS_CMD_ZERO, seq, true);
        ServiceCodec.Encode(w, s, full: false);
        w.EndMessage();
    }

    /// <summary>SET_CONFIG with the three timeouts (0 = leave unchanged).</summary>
    public static void SetTimeouts(NetlinkWriter w, ushort family, uint seq, IpvsTimeouts t)
    {
        Begin(w, family, IPVS_CMD_SET_CONFIG, seq, true);
        w.PutU32(IPVS_CMD_ATTR_TIMEOUT_TCP, t.TcpSeconds);
        w.PutU32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.TcpFinSeconds);
        w.PutU32(IPVS_CMD_ATTR_TIMEOUT_UDP, t.UdpSeconds);
        w.EndMessage();
    }
}
