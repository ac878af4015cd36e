using System.Buffers.Binary;
using System.Text;
using static Mesh.Ipvs.Netlink.NetlinkConstants;

namespace Mesh.Ipvs.Netlink;

/// <summary>
/// Builds netlink messages (nlmsghdr [+ genlmsghdr] + attributes, nested attributes) into one growable buffer.
/// Several messages may be written back to back (a batch). All multi-byte header fields are host byte order
/// (little-endian on every platform .NET supports on Linux); <see cref="PutBe16"/>/<see cref="PutBe32"/> write
/// network byte order for the attributes declared __be16/__be32 in the kernel headers.
/// </summary>
public sealed class NetlinkWriter
{
    private byte[] _buf;
    private int _len;
    private int _msgStart = -1;
    private int _depth;

    public NetlinkWriter(int capacity = 256) => _buf = new byte[Math.Max(capacity, 64)];

    /// <summary>Bytes written so far (all complete messages plus the one in progress).</summary>
    public int Length => _len;

    public ReadOnlySpan<byte> WrittenSpan => _buf.AsSpan(0, _len);

    public ReadOnlyMemory<byte> WrittenMemory => _buf.AsMemory(0, _len);

    public byte[] ToArray() => WrittenSpan.ToArray();

    public void Clear()
    {
        _len = 0;
        _msgStart = -1;
        _depth = 0;
    }

    /// <summary>Drops everything written after <paramref name="length"/> (a message that could not be completed).</summary>
    public void Truncate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _len);
        _len = length;
        _msgStart = -1;
        _depth = 0;
    }

    /// <summary>Starts a message: writes struct nlmsghdr with a length patched by <see cref="EndMessage"/>.</summary>
    public void BeginMessage(ushort type, NetlinkMessageFlags flags, uint seq, uint pid = 0)
    {
        if (_msgStart >= 0) throw new InvalidOperationException("a message is already in progress");
        _len = Align(_len);
        _msgStart = _len;
        var h = Reserve(NLMSG_HDRLEN);
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], (ushort)flags);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], seq);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], pid);
    }

    /// <summary>Writes struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }.</summary>
    public void PutGenlHeader(byte cmd, byte version)
    {
        RequireMessage();
        var h = Reserve(GenetlinkConstants.GENL_HDRLEN);
        h[0] = cmd;
        h[1] = version;
        h[2] = 0;
        h[3] = 0;
    }

    /// <summary>
    /// Writes a family's fixed header (struct ifinfomsg, rtmsg, ndmsg...) or any raw bytes at the current position,
    /// padded to 4 bytes: the rtnetlink families put such a struct where generic netlink puts genlmsghdr, and a veth
    /// peer nests one inside an attribute.
    /// </summary>
    public void PutHeader(ReadOnlySpan<byte> header)
    {
        RequireMessage();
        _len = Align(_len);
        header.CopyTo(Reserve(header.Length));
        PadToAlignment();
    }

    /// <summary>Finishes the current message, patching nlmsg_len. Returns the message's offset in the buffer.</summary>
    public int EndMessage()
    {
        RequireMessage();
        if (_depth != 0) throw new InvalidOperationException("unclosed nested attribute");
        int start = _msgStart;
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(start), (uint)(_len - start));
        _msgStart = -1;
        return start;
    }

    public void PutAttribute(ushort type, ReadOnlySpan<byte> value)
    {
        RequireMessage();
        int total = NLA_HDRLEN + value.Length;
        if (total > ushort.MaxValue) throw new ArgumentException($"attribute {type} too long ({value.Length} bytes)");
        _len = Align(_len);
        var span = Reserve(total);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        value.CopyTo(span[NLA_HDRLEN..]);
        PadToAlignment();
    }

    public void PutU8(ushort type, byte value) => PutAttribute(type, [value]);

    public void PutU16(ushort type, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        PutAttribute(type, b);
    }

    public void PutBe16(ushort type, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        PutAttribute(type, b);
    }

    public void PutU32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        PutAttribute(type, b);
    }

    public void PutBe32(ushort type, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        PutAttribute(type, b);
    }

    public void PutU64(ushort type, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        PutAttribute(type, b);
    }

    public void PutBe64(ushort type, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(b, value);
        PutAttribute(type, b);
    }

    /// <summary>A NUL-terminated string (NLA_NUL_STRING / NLA_STRING with terminator).</summary>
    public void PutStringZ(ushort type, string value)
    {
        int n = Encoding.UTF8.GetByteCount(value);
        Span<byte> b = n < 256 ? stackalloc byte[n + 1] : new byte[n + 1];
        Encoding.UTF8.GetBytes(value, b);
        b[n] = 0;
        PutAttribute(type, b);
    }

    /// <summary>Opens a nested attribute (NLA_F_NESTED is set); close it with <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        RequireMessage();
        _len = Align(_len);
        int start = _len;
        var span = Reserve(NLA_HDRLEN);
        BinaryPrimitives.WriteUInt16LittleEndian(span, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], (ushort)(type | NLA_F_NESTED));
        _depth++;
        return start;
    }

    public void EndNested(int token)
    {
        if (_depth == 0) throw new InvalidOperationException("no nested attribute open");
        int len = _len - token;
        if (len > ushort.MaxValue) throw new InvalidOperationException("nested attribute too long");
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(token), (ushort)len);
        _depth--;
    }

    private void RequireMessage()
    {
        if (_msgStart < 0) throw new InvalidOperationException("BeginMessage first");
    }

    private void PadToAlignment()
    {
        int aligned = Align(_len);
        if (aligned != _len)
        {
            var pad = Reserve(aligned - _len);
            pad.Clear();
        }
    }

    private Span<byte> Reserve(int n)
    {
        if (_len + n > _buf.Length)
        {
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
        }
        var s = _buf.AsSpan(_len, n);
        _len += n;
        return s;
    }
}
