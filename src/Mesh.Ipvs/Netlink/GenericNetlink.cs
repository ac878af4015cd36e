using static Mesh.Ipvs.Netlink.GenetlinkConstants;

namespace Mesh.Ipvs.Netlink;

/// <summary>A resolved generic netlink family (CTRL_CMD_GETFAMILY reply).</summary>
public sealed record GenericNetlinkFamily(string Name, ushort Id, uint Version, uint HeaderSize, uint MaxAttribute);

/// <summary>The generic netlink controller ("nlctrl", GENL_ID_CTRL): family name → id.</summary>
public static class GenericNetlink
{
    /// <summary>Builds the CTRL_CMD_GETFAMILY request for <paramref name="familyName"/>.</summary>
    public static void BuildGetFamily(NetlinkWriter w, string familyName, uint seq)
    {
        if (familyName.Length == 0 || familyName.Length >= GENL_NAMSIZ) throw new ArgumentException($"family name must be 1..{GENL_NAMSIZ - 1} characters", nameof(familyName));
        w.BeginMessage(GENL_ID_CTRL, NetlinkMessageFlags.Request | NetlinkMessageFlags.Ack, seq);
        w.PutGenlHeader(CTRL_CMD_GETFAMILY, CTRL_VERSION);
        w.PutStringZ(CTRL_ATTR_FAMILY_NAME, familyName);
        w.EndMessage();
    }

    /// <summary>Decodes a CTRL_CMD_NEWFAMILY reply.</summary>
    public static GenericNetlinkFamily ParseFamily(NetlinkMessage reply, string operation = "CTRL_CMD_GETFAMILY")
    {
        var (_, _, attrBytes) = NetlinkDecoder.ParseGenl(reply, operation);
        var a = NetlinkAttributes.Parse(attrBytes, operation);
        return new GenericNetlinkFamily(
            a.GetString(CTRL_ATTR_FAMILY_NAME, "CTRL_ATTR_FAMILY_NAME"),
            a.GetU16(CTRL_ATTR_FAMILY_ID, "CTRL_ATTR_FAMILY_ID"),
            a.GetU32OrDefault(CTRL_ATTR_VERSION, "CTRL_ATTR_VERSION"),
            a.GetU32OrDefault(CTRL_ATTR_HDRSIZE, "CTRL_ATTR_HDRSIZE"),
            a.GetU32OrDefault(CTRL_ATTR_MAXATTR, "CTRL_ATTR_MAXATTR"));
    }

    /// <summary>Resolves a family; null when the kernel does not know it (ENOENT: module not loaded / not built).</summary>
    public static GenericNetlinkFamily? TryResolve(NetlinkSocket socket, string familyName)
    {
        var w = new NetlinkWriter(64);
        uint seq = socket.NextSequence();
        BuildGetFamily(w, familyName, seq);
        string op = $"CTRL_CMD_GETFAMILY({familyName})";
        try
        {
            var replies = socket.Request(w.WrittenSpan, seq, dump: false, op);
            if (replies.Count == 0) throw new NetlinkProtocolException(op, "no CTRL_CMD_NEWFAMILY reply before the ACK");
            return ParseFamily(replies[0], op);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT)
        {
            return null;
        }
    }
}
