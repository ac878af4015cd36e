namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// Constants of NETLINK_ROUTE from /usr/include/linux/rtnetlink.h, if_link.h, if_addr.h, neighbour.h, fib_rules.h,
/// veth.h and if_bridge.h (uapi of Linux 6.1: nothing newer is used, user-mode-linux in CI runs 6.1).
/// </summary>
internal static class RouteConstants
{
    public const int NETLINK_ROUTE = 0;

    // Address families (socket.h)
    public const byte AF_UNSPEC = 0;
    public const byte AF_INET = 2;
    public const byte AF_BRIDGE = 7;
    public const byte AF_INET6 = 10;

    // Message types
    public const ushort RTM_NEWLINK = 16;
    public const ushort RTM_DELLINK = 17;
    public const ushort RTM_GETLINK = 18;
    public const ushort RTM_NEWADDR = 20;
    public const ushort RTM_DELADDR = 21;
    public const ushort RTM_GETADDR = 22;
    public const ushort RTM_NEWROUTE = 24;
    public const ushort RTM_DELROUTE = 25;
    public const ushort RTM_GETROUTE = 26;
    public const ushort RTM_NEWNEIGH = 28;
    public const ushort RTM_DELNEIGH = 29;
    public const ushort RTM_GETNEIGH = 30;
    public const ushort RTM_NEWRULE = 32;
    public const ushort RTM_DELRULE = 33;
    public const ushort RTM_GETRULE = 34;
    public const ushort RTM_NEWNSID = 88;
    public const ushort RTM_DELNSID = 89;
    public const ushort RTM_GETNSID = 90;

    // Multicast groups (enum rtnetlink_groups)
    public const int RTNLGRP_LINK = 1;
    public const int RTNLGRP_NSID = 28;

    // nlmsg_flags for NEW requests
    public const ushort NLM_F_REPLACE = 0x100;
    public const ushort NLM_F_EXCL = 0x200;
    public const ushort NLM_F_CREATE = 0x400;

    // struct ifinfomsg { u8 family; u8 pad; u16 type; s32 index; u32 flags; u32 change; }
    public const int IFINFOMSG_LEN = 16;
    public const uint IFF_UP = 0x1;

    // IFLA_*
    public const ushort IFLA_ADDRESS = 1;
    public const ushort IFLA_IFNAME = 3;
    public const ushort IFLA_MTU = 4;
    public const ushort IFLA_LINK = 5;
    public const ushort IFLA_MASTER = 10;
    public const ushort IFLA_LINKINFO = 18;
    public const ushort IFLA_NET_NS_FD = 28;
    public const ushort IFLA_EXT_MASK = 29;
    public const ushort IFLA_LINK_NETNSID = 37;

    // struct rtgenmsg { u8 family; }, padded to NLMSG_ALIGNTO as the kernel parses it (net_namespace.c)
    public const int RTGENMSG_LEN = 4;

    // NETNSA_* (net_namespace.h)
    public const ushort NETNSA_NSID = 1;
    public const ushort NETNSA_FD = 3;

    /// <summary>NETNSA_NSID_NOT_ASSIGNED: the namespace has no id in the asking one yet.</summary>
    public const int NETNSA_NSID_NOT_ASSIGNED = -1;

    // IFLA_INFO_*
    public const ushort IFLA_INFO_KIND = 1;
    public const ushort IFLA_INFO_DATA = 2;

    // IFLA_VXLAN_*
    public const ushort IFLA_VXLAN_ID = 1;
    public const ushort IFLA_VXLAN_LINK = 3;
    public const ushort IFLA_VXLAN_LOCAL = 4;
    public const ushort IFLA_VXLAN_LEARNING = 7;
    public const ushort IFLA_VXLAN_PROXY = 11;
    public const ushort IFLA_VXLAN_PORT = 15; // __be16

    // VETH_INFO_PEER: struct ifinfomsg + IFLA_* of the peer
    public const ushort VETH_INFO_PEER = 1;

    // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32 index; }
    public const int IFADDRMSG_LEN = 8;
    public const ushort IFA_ADDRESS = 1;
    public const ushort IFA_LOCAL = 2;

    // struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }
    public const int RTMSG_LEN = 12;
    public const ushort RTA_DST = 1;
    public const ushort RTA_OIF = 4;
    public const ushort RTA_GATEWAY = 5;
    public const ushort RTA_PRIORITY = 6;
    public const ushort RTA_PREFSRC = 7;
    public const ushort RTA_TABLE = 15;
    public const byte RT_TABLE_UNSPEC = 0;
    public const byte RT_TABLE_MAIN = 254;
    public const byte RTPROT_BOOT = 3;
    public const byte RT_SCOPE_UNIVERSE = 0;
    public const byte RT_SCOPE_LINK = 253;
    public const byte RTN_UNICAST = 1;

    // struct fib_rule_hdr { u8 family, dst_len, src_len, tos, table, res1, res2, action; u32 flags; }
    public const int FIB_RULE_HDR_LEN = 12;
    public const ushort FRA_SRC = 2;
    public const ushort FRA_PRIORITY = 6;
    public const ushort FRA_TABLE = 15;
    public const byte FR_ACT_TO_TBL = 1;

    // struct ndmsg { u8 family; u8 pad1; u16 pad2; s32 ifindex; u16 state; u8 flags; u8 type; }
    public const int NDMSG_LEN = 12;
    public const ushort NDA_DST = 1;
    public const ushort NDA_LLADDR = 2;
    public const ushort NUD_NOARP = 0x40;
    public const ushort NUD_PERMANENT = 0x80;
    public const byte NTF_SELF = 0x02;
}
