namespace Mesh.Ipvs.Netlink;

/// <summary>Constants from /usr/include/linux/genetlink.h.</summary>
internal static class GenetlinkConstants
{
    // struct genlmsghdr { __u8 cmd; __u8 version; __u16 reserved; }
    public const int GENL_HDRLEN = 4;

    // GENL_ID_CTRL == NLMSG_MIN_TYPE
    public const ushort GENL_ID_CTRL = 0x10;

    // enum { CTRL_CMD_UNSPEC, CTRL_CMD_NEWFAMILY, CTRL_CMD_DELFAMILY, CTRL_CMD_GETFAMILY, ... }
    public const byte CTRL_CMD_NEWFAMILY = 1;
    public const byte CTRL_CMD_GETFAMILY = 3;

    // enum { CTRL_ATTR_UNSPEC, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_ATTR_VERSION, CTRL_ATTR_HDRSIZE, CTRL_ATTR_MAXATTR, ... }
    public const ushort CTRL_ATTR_FAMILY_ID = 1;
    public const ushort CTRL_ATTR_FAMILY_NAME = 2;
    public const ushort CTRL_ATTR_VERSION = 3;
    public const ushort CTRL_ATTR_HDRSIZE = 4;
    public const ushort CTRL_ATTR_MAXATTR = 5;

    // Version the controller is addressed with (libnl/genl use 1; the kernel accepts any).
    public const byte CTRL_VERSION = 1;

    // GENL_NAMSIZ
    public const int GENL_NAMSIZ = 16;
}
