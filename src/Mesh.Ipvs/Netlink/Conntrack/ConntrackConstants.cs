namespace Mesh.Ipvs.Netlink.Conntrack;

/// <summary>
/// Constants from /usr/include/linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h and nf_conntrack_common.h (kernel
/// 6.x uapi). Integer attributes are big-endian (NLA_BE32, ports NLA_BE16), as everywhere in nfnetlink.
/// </summary>
internal static class ConntrackConstants
{
    public const int NETLINK_NETFILTER = 12;
    public const byte NFNL_SUBSYS_CTNETLINK = 1;
    public const int NFGENMSG_LEN = 4;

    // enum cntl_msg_types
    public const byte IPCTNL_MSG_CT_NEW = 0;
    public const byte IPCTNL_MSG_CT_GET = 1;

    public static ushort MessageType(byte msg) => (ushort)((NFNL_SUBSYS_CTNETLINK << 8) | msg);

    // enum ctattr_type
    public const ushort CTA_TUPLE_ORIG = 1;
    public const ushort CTA_TUPLE_REPLY = 2;
    public const ushort CTA_STATUS = 3;
    public const ushort CTA_PROTOINFO = 4;
    public const ushort CTA_ID = 12;

    // enum ctattr_tuple
    public const ushort CTA_TUPLE_IP = 1;
    public const ushort CTA_TUPLE_PROTO = 2;

    // enum ctattr_ip
    public const ushort CTA_IP_V4_SRC = 1;
    public const ushort CTA_IP_V4_DST = 2;
    public const ushort CTA_IP_V6_SRC = 3;
    public const ushort CTA_IP_V6_DST = 4;

    // enum ctattr_l4proto
    public const ushort CTA_PROTO_NUM = 1;
    public const ushort CTA_PROTO_SRC_PORT = 2;
    public const ushort CTA_PROTO_DST_PORT = 3;

    // enum ctattr_protoinfo / ctattr_protoinfo_tcp
    public const ushort CTA_PROTOINFO_TCP = 1;
    public const ushort CTA_PROTOINFO_TCP_STATE = 1;
}
