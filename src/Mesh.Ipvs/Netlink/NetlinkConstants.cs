namespace Mesh.Ipvs.Netlink;

/// <summary>Constants from /usr/include/linux/netlink.h.</summary>
internal static class NetlinkConstants
{
    // Protocol families (NETLINK_*)
    public const int NETLINK_GENERIC = 16;

    // struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type; __u16 nlmsg_flags; __u32 nlmsg_seq; __u32 nlmsg_pid; }
    public const int NLMSG_HDRLEN = 16;
    public const int NLMSG_ALIGNTO = 4;

    // Reserved control messages (NLMSG_*)
    public const ushort NLMSG_NOOP = 0x1;
    public const ushort NLMSG_ERROR = 0x2;
    public const ushort NLMSG_DONE = 0x3;
    public const ushort NLMSG_OVERRUN = 0x4;
    public const ushort NLMSG_MIN_TYPE = 0x10;

    // struct nlattr { __u16 nla_len; __u16 nla_type; }
    public const int NLA_HDRLEN = 4;
    public const int NLA_ALIGNTO = 4;
    public const ushort NLA_F_NESTED = 1 << 15;
    public const ushort NLA_F_NET_BYTEORDER = 1 << 14;
    public const ushort NLA_TYPE_MASK = unchecked((ushort)~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));

    // struct nlmsgerr { int error; struct nlmsghdr msg; } + optional TLVs (enum nlmsgerr_attrs)
    public const ushort NLMSGERR_ATTR_MSG = 1;
    public const ushort NLMSGERR_ATTR_OFFS = 2;

    // SOL_NETLINK (270, Tmds.LibC) socket options
    public const int NETLINK_ADD_MEMBERSHIP = 1;
    public const int NETLINK_CAP_ACK = 10;
    public const int NETLINK_EXT_ACK = 11;

    public static int Align(int len) => (len + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}

/// <summary>nlmsg_flags from /usr/include/linux/netlink.h.</summary>
[Flags]
public enum NetlinkMessageFlags : ushort
{
    None = 0,
    Request = 0x01,   // NLM_F_REQUEST
    Multi = 0x02,     // NLM_F_MULTI
    Ack = 0x04,       // NLM_F_ACK
    Echo = 0x08,      // NLM_F_ECHO
    DumpIntr = 0x10,  // NLM_F_DUMP_INTR
    Root = 0x100,     // NLM_F_ROOT (GET requests); NLM_F_CAPPED on NLMSG_ERROR
    Match = 0x200,    // NLM_F_MATCH (GET requests); NLM_F_ACK_TLVS on NLMSG_ERROR
    Dump = Root | Match, // NLM_F_DUMP
}
