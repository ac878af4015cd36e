using System.Buffers.Binary;
using System.Text;
using static Mesh.Ipvs.Netlink.NetlinkConstants;

namespace Mesh.Ipvs.Netlink;

/// <summary>One decoded netlink message: the nlmsghdr fields and the payload that follows the header.</summary>
public readonly record struct NetlinkMessage(ushort Type, NetlinkMessageFlags Flags, uint Sequence, uint PortId, ReadOnlyMemory<byte> Payload)
{
    public bool IsError => Type == NLMSG_ERROR;
    public bool IsDone => Type == NLMSG_DONE;
}

/// <summary>The decoded payload of NLMSG_ERROR (struct nlmsgerr + extended-ack TLVs).</summary>
public readonly record struct NetlinkError(int Errno, uint OriginalSequence, ushort OriginalType, string? Message)
{
    public bool IsAck => Errno == 0;
}

/// <summary>
/// Decoding side of the codec: splits a datagram into messages, decodes NLMSG_ERROR/NLMSG_DONE and the generic
/// netlink header. Every length is checked before it is used; bad input raises <see cref="NetlinkProtocolException"/>.
/// </summary>
public static class NetlinkDecoder
{
    /// <summary>Splits one received datagram into its messages (a multipart dump sends several per datagram).</summary>
    public static List<NetlinkMessage> ParseMessages(ReadOnlyMemory<byte> datagram, string operation = "netlink receive")
    {
        var list = new List<NetlinkMessage>();
        var span = datagram.Span;
        int off = 0;
        while (off < span.Length)
        {
            int remaining = span.Length - off;
            if (remaining < NLMSG_HDRLEN)
            {
                throw new NetlinkProtocolException(operation, $"{remaining} trailing bytes at offset {off}, shorter than nlmsghdr ({NLMSG_HDRLEN})");
            }
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(span[off..]);
            if (len < NLMSG_HDRLEN || len > (uint)remaining)
            {
                throw new NetlinkProtocolException(operation, $"nlmsg_len {len} at offset {off} out of range (1 message needs {NLMSG_HDRLEN}..{remaining})");
            }
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(span[(off + 4)..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(span[(off + 6)..]);
            uint seq = BinaryPrimitives.ReadUInt32LittleEndian(span[(off + 8)..]);
            uint pid = BinaryPrimitives.ReadUInt32LittleEndian(span[(off + 12)..]);
            list.Add(new NetlinkMessage(type, (NetlinkMessageFlags)flags, seq, pid, datagram.Slice(off + NLMSG_HDRLEN, (int)len - NLMSG_HDRLEN)));
            off += Math.Min(Align((int)len), remaining);
        }
        return list;
    }

    /// <summary>Decodes struct nlmsgerr { int error; struct nlmsghdr msg; [payload]; [TLVs] }.</summary>
    public static NetlinkError ParseError(NetlinkMessage message, string operation = "netlink receive")
    {
        var p = message.Payload.Span;
        if (p.Length < 4 + NLMSG_HDRLEN)
        {
            throw new NetlinkProtocolException(operation, $"NLMSG_ERROR payload is {p.Length} bytes, needs at least {4 + NLMSG_HDRLEN}");
        }
        int error = BinaryPrimitives.ReadInt32LittleEndian(p);
        uint origLen = BinaryPrimitives.ReadUInt32LittleEndian(p[4..]);
        ushort origType = BinaryPrimitives.ReadUInt16LittleEndian(p[8..]);
        uint origSeq = BinaryPrimitives.ReadUInt32LittleEndian(p[12..]);
        string? text = null;
        // NLM_F_ACK_TLVS (0x200): TLVs follow the echoed request; NLM_F_CAPPED (0x100): only its header was echoed.
        if ((message.Flags & NetlinkMessageFlags.Match) != 0)
        {
            int tlvOff = (message.Flags & NetlinkMessageFlags.Root) != 0 ? 4 + NLMSG_HDRLEN : 4 + Align((int)Math.Min(origLen, int.MaxValue));
            if (tlvOff <= p.Length)
            {
                var attrs = NetlinkAttributes.Parse(message.Payload[tlvOff..], operation);
                if (attrs.TryGet(NLMSGERR_ATTR_MSG, out var m))
                {
                    text = DecodeString(m.Span);
                }
            }
        }
        if (error > 0)
        {
            throw new NetlinkProtocolException(operation, $"NLMSG_ERROR with positive error {error}");
        }
        return new NetlinkError(-error, origSeq, origType, text);
    }

    /// <summary>NLMSG_DONE carries an int error (0, or -errno when a dump failed part way).</summary>
    public static int ParseDoneErrno(NetlinkMessage message)
    {
        var p = message.Payload.Span;
        if (p.Length < 4) return 0; // some kernels send an empty DONE
        int error = BinaryPrimitives.ReadInt32LittleEndian(p);
        return error < 0 ? -error : 0;
    }

    /// <summary>Splits a generic netlink message into (cmd, version) and its attribute area.</summary>
    public static (byte Command, byte Version, ReadOnlyMemory<byte> Attributes) ParseGenl(NetlinkMessage message, string operation = "netlink receive")
    {
        if (message.Payload.Length < GenetlinkConstants.GENL_HDRLEN)
        {
            throw new NetlinkProtocolException(operation, $"generic netlink message of type {message.Type} has {message.Payload.Length} payload bytes, shorter than genlmsghdr");
        }
        var p = message.Payload.Span;
        return (p[0], p[1], message.Payload[GenetlinkConstants.GENL_HDRLEN..]);
    }

    internal static string DecodeString(ReadOnlySpan<byte> s)
    {
        int nul = s.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? s[..nul] : s);
    }
}
