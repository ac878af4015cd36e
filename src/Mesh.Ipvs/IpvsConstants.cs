namespace Mesh.Ipvs;

/// <summary>Constants from /usr/include/linux/ip_vs.h (generic netlink interface).</summary>
internal static class IpvsConstants
{
    // #define IPVS_GENL_NAME "IPVS", IPVS_GENL_VERSION 0x1
    public const string IPVS_GENL_NAME = "IPVS";
    public const byte IPVS_GENL_VERSION = 1;

    // IP_VS_SCHEDNAME_MAXLEN, IP_VS_PENAME_MAXLEN (including the NUL)
    public const int IP_VS_SCHEDNAME_MAXLEN = 16;
    public const int IP_VS_PENAME_MAXLEN = 16;

    // enum IPVS_CMD_*
    public const byte IPVS_CMD_NEW_SERVICE = 1;
    public const byte IPVS_CMD_SET_SERVICE = 2;
    public const byte IPVS_CMD_DEL_SERVICE = 3;
    public const byte IPVS_CMD_GET_SERVICE = 4;
    public const byte IPVS_CMD_NEW_DEST = 5;
    public const byte IPVS_CMD_SET_DEST = 6;
    public const byte IPVS_CMD_DEL_DEST = 7;
    public const byte IPVS_CMD_GET_DEST = 8;
    public const byte IPVS_CMD_NEW_DAEMON = 9;
    public const byte IPVS_CMD_DEL_DAEMON = 10;
    public const byte IPVS_CMD_GET_DAEMON = 11;
    public const byte IPVS_CMD_SET_CONFIG = 12;
    public const byte IPVS_CMD_GET_CONFIG = 13;
    public const byte IPVS_CMD_SET_INFO = 14;
    public const byte IPVS_CMD_GET_INFO = 15;
    public const byte IPVS_CMD_ZERO = 16;
    public const byte IPVS_CMD_FLUSH = 17;

    // enum IPVS_CMD_ATTR_*
    public const ushort IPVS_CMD_ATTR_SERVICE = 1;
    public const ushort IPVS_CMD_ATTR_DEST = 2;
    public const ushort IPVS_CMD_ATTR_DAEMON = 3;
    public const ushort IPVS_CMD_ATTR_TIMEOUT_TCP = 4;
    public const ushort IPVS_CMD_ATTR_TIMEOUT_TCP_FIN = 5;
    public const ushort IPVS_CMD_ATTR_TIMEOUT_UDP = 6;

    // enum IPVS_SVC_ATTR_*
    public const ushort IPVS_SVC_ATTR_AF = 1;          // u16
    public const ushort IPVS_SVC_ATTR_PROTOCOL = 2;    // u16
    public const ushort IPVS_SVC_ATTR_ADDR = 3;        // union nf_inet_addr (16 bytes)
    public const ushort IPVS_SVC_ATTR_PORT = 4;        // __be16
    public const ushort IPVS_SVC_ATTR_FWMARK = 5;      // u32
    public const ushort IPVS_SVC_ATTR_SCHED_NAME = 6;  // NUL string, < IP_VS_SCHEDNAME_MAXLEN
    public const ushort IPVS_SVC_ATTR_FLAGS = 7;       // struct ip_vs_flags { u32 flags; u32 mask; }
    public const ushort IPVS_SVC_ATTR_TIMEOUT = 8;     // u32
    public const ushort IPVS_SVC_ATTR_NETMASK = 9;     // __be32 (IPv4 mask) / prefix length (IPv6)
    public const ushort IPVS_SVC_ATTR_STATS = 10;      // nested IPVS_STATS_ATTR_* (32-bit counters)
    public const ushort IPVS_SVC_ATTR_PE_NAME = 11;    // NUL string
    public const ushort IPVS_SVC_ATTR_STATS64 = 12;    // nested IPVS_STATS_ATTR_* (64-bit counters)

    // enum IPVS_DEST_ATTR_*
    public const ushort IPVS_DEST_ATTR_ADDR = 1;          // union nf_inet_addr
    public const ushort IPVS_DEST_ATTR_PORT = 2;          // __be16
    public const ushort IPVS_DEST_ATTR_FWD_METHOD = 3;    // u32 (IP_VS_CONN_F_FWD_MASK bits)
    public const ushort IPVS_DEST_ATTR_WEIGHT = 4;        // u32 (int)
    public const ushort IPVS_DEST_ATTR_U_THRESH = 5;      // u32
    public const ushort IPVS_DEST_ATTR_L_THRESH = 6;      // u32
    public const ushort IPVS_DEST_ATTR_ACTIVE_CONNS = 7;  // u32
    public const ushort IPVS_DEST_ATTR_INACT_CONNS = 8;   // u32
    public const ushort IPVS_DEST_ATTR_PERSIST_CONNS = 9; // u32
    public const ushort IPVS_DEST_ATTR_STATS = 10;        // nested
    public const ushort IPVS_DEST_ATTR_ADDR_FAMILY = 11;  // u16
    public const ushort IPVS_DEST_ATTR_STATS64 = 12;      // nested
    public const ushort IPVS_DEST_ATTR_TUN_TYPE = 13;     // u8
    public const ushort IPVS_DEST_ATTR_TUN_PORT = 14;     // __be16
    public const ushort IPVS_DEST_ATTR_TUN_FLAGS = 15;    // u16

    // enum IPVS_STATS_ATTR_*
    public const ushort IPVS_STATS_ATTR_CONNS = 1;
    public const ushort IPVS_STATS_ATTR_INPKTS = 2;
    public const ushort IPVS_STATS_ATTR_OUTPKTS = 3;
    public const ushort IPVS_STATS_ATTR_INBYTES = 4;
    public const ushort IPVS_STATS_ATTR_OUTBYTES = 5;
    public const ushort IPVS_STATS_ATTR_CPS = 6;
    public const ushort IPVS_STATS_ATTR_INPPS = 7;
    public const ushort IPVS_STATS_ATTR_OUTPPS = 8;
    public const ushort IPVS_STATS_ATTR_INBPS = 9;
    public const ushort IPVS_STATS_ATTR_OUTBPS = 10;

    // enum IPVS_INFO_ATTR_*
    public const ushort IPVS_INFO_ATTR_VERSION = 1;
    public const ushort IPVS_INFO_ATTR_CONN_TAB_SIZE = 2;

    // IP_VS_CONN_F_FWD_MASK
    public const uint IP_VS_CONN_F_FWD_MASK = 0x0007;

    // IP_VS_SVC_F_HASHED: set by the kernel on every hashed service, not settable by user space.
    public const uint IP_VS_SVC_F_HASHED = 0x0002;

    // <bits/socket.h>
    public const ushort AF_INET = 2;
    public const ushort AF_INET6 = 10;

    public static string CommandName(byte cmd) => cmd switch
    {
        IPVS_CMD_NEW_SERVICE => "IPVS_CMD_NEW_SERVICE",
        IPVS_CMD_SET_SERVICE => "IPVS_CMD_SET_SERVICE",
        IPVS_CMD_DEL_SERVICE => "IPVS_CMD_DEL_SERVICE",
        IPVS_CMD_GET_SERVICE => "IPVS_CMD_GET_SERVICE",
        IPVS_CMD_NEW_DEST => "IPVS_CMD_NEW_DEST",
        IPVS_CMD_SET_DEST => "IPVS_CMD_SET_DEST",
        IPVS_CMD_DEL_DEST => "IPVS_CMD_DEL_DEST",
        IPVS_CMD_GET_DEST => "IPVS_CMD_GET_DEST",
        IPVS_CMD_SET_CONFIG => "IPVS_CMD_SET_CONFIG",
        IPVS_CMD_GET_CONFIG => "IPVS_CMD_GET_CONFIG",
        IPVS_CMD_GET_INFO => "IPVS_CMD_GET_INFO",
        IPVS_CMD_ZERO => "IPVS_CMD_ZERO",
        IPVS_CMD_FLUSH => "IPVS_CMD_FLUSH",
        _ => $"IPVS_CMD_{cmd}",
    };
}
