using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>Decodes IPVS replies (the message payloads after nlmsghdr).</summary>
internal static class IpvsReplies
{
    public static IpvsService Service(NetlinkMessage m, string operation)
    {
        var (_, _, attrs) = NetlinkDecoder.ParseGenl(m, operation);
        var top = NetlinkAttributes.Parse(attrs, operation);
        return ServiceCodec.Decode(top.GetNested(IPVS_CMD_ATTR_SERVICE, "IPVS_CMD_ATTR_SERVICE"), operation);
    }

    public static IpvsDestination Destination(NetlinkMessage m, System.Net.Sockets.AddressFamily serviceFamily, string operation)
    {
        var (_, _, attrs) = NetlinkDecoder.ParseGenl(m, operation);
        var top = NetlinkAttributes.Parse(attrs, operation);
        return DestinationCodec.Decode(top.GetNested(IPVS_CMD_ATTR_DEST, "IPVS_CMD_ATTR_DEST"), serviceFamily, operation);
    }

    public static IpvsTimeouts Timeouts(NetlinkMessage m, string operation)
    {
        var (_, _, attrs) = NetlinkDecoder.ParseGenl(m, operation);
        var a = NetlinkAttributes.Parse(attrs, operation);
        return new IpvsTimeouts(
            a.GetU32OrDefault(IPVS_CMD_ATTR_TIMEOUT_TCP, "IPVS_CMD_ATTR_TIMEOUT_TCP"),
            a.GetU32OrDefault(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN"),
            a.GetU32OrDefault(IPVS_CMD_ATTR_TIMEOUT_UDP, "IPVS_CMD_ATTR_TIMEOUT_UDP"));
    }

    public static IpvsInfo Info(NetlinkMessage m, string operation)
    {
        var (_, _, attrs) = NetlinkDecoder.ParseGenl(m, operation);
        var a = NetlinkAttributes.Parse(attrs, operation);
        return new IpvsInfo(
            a.GetU32(IPVS_INFO_ATTR_VERSION, "IPVS_INFO_ATTR_VERSION"),
            a.GetU32(IPVS_INFO_ATTR_CONN_TAB_SIZE, "IPVS_INFO_ATTR_CONN_TAB_SIZE"));
    }
}
