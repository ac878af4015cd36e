using System.Buffers.Binary;
using static Mesh.Ipvs.Netlink.NetlinkConstants;

namespace Mesh.Ipvs.Netlink;

/// <summary>
/// A parsed attribute stream (struct nlattr { u16 nla_len; u16 nla_type; } + value, 4-byte aligned).
/// Types are stored without NLA_F_NESTED / NLA_F_NET_BYTEORDER. Getters check value lengths and raise
/// <see cref="NetlinkProtocolException"/> instead of reading out of range.
/// </summary>
public sealed class NetlinkAttributes
{
    private readonly Dictionary<ushort, ReadOnlyMemory<byte>> _attrs;
    private readonly string _operation;

    private NetlinkAttributes(Dictionary<ushort, ReadOnlyMemory<byte>> attrs, string operation)
    {
        _attrs = attrs;
        _operation = operation;
    }

    public int Count => _attrs.Count;

    public IEnumerable<ushort> Types => _attrs.Keys;

    public static NetlinkAttributes Parse(ReadOnlyMemory<byte> data, string operation = "netlink receive")
    {
        // A repeated type keeps its last value, as the kernel's nla_parse does.
        var dict = new Dictionary<ushort, ReadOnlyMemory<byte>>();
        foreach (var (type, value) in ParseList(data, operation))
        {
            dict[type] = value;
        }

        return new NetlinkAttributes(dict, operation);
    }

    /// <summary>
    /// The attributes in order, repeats kept (a list such as NFTA_RULE_EXPRESSIONS or NFTA_SET_ELEM_LIST_ELEMENTS repeats
    /// one type), with the same bounds checks as <see cref="Parse"/>. Types are without the flag bits.
    /// </summary>
    public static List<(ushort Type, ReadOnlyMemory<byte> Value)> ParseList(ReadOnlyMemory<byte> data, string operation = "netlink receive")
    {
        var list = new List<(ushort, ReadOnlyMemory<byte>)>();
        int off = 0;
        while (Next(data.Span, ref off, out var type, out var start, out var length, operation))
        {
            list.Add((type, data.Slice(start, length)));
        }
        return list;
    }

    /// <summary>
    /// The value of attribute <paramref name="type"/> (its last one, as <see cref="Parse"/> keeps) found by walking the
    /// stream in place, with <see cref="ParseList"/>'s bounds checks: for a dump's many small messages, where a
    /// dictionary per message was most of what reading them allocated.
    /// </summary>
    public static bool TryFind(ReadOnlySpan<byte> data, ushort type, out ReadOnlySpan<byte> value, string operation = "netlink receive")
    {
        value = default;
        var found = false;
        int off = 0;
        while (Next(data, ref off, out var t, out var start, out var length, operation))
        {
            if (t == type)
            {
                value = data.Slice(start, length);
                found = true;
            }
        }

        return found;
    }

    /// <summary>
    /// The attribute at <paramref name="off"/> (its type without the flag bits, where its value starts and how long it is),
    /// <paramref name="off"/> moved past it; false at the end. A header or length out of range is a protocol error.
    /// </summary>
    private static bool Next(ReadOnlySpan<byte> span, ref int off, out ushort type, out int start, out int length, string operation)
    {
        (type, start, length) = (0, 0, 0);
        if (off >= span.Length)
        {
            return false;
        }

        int remaining = span.Length - off;
        if (remaining < NLA_HDRLEN)
        {
            throw new NetlinkProtocolException(operation, $"{remaining} trailing bytes at attribute offset {off}, shorter than nlattr");
        }

        ushort len = BinaryPrimitives.ReadUInt16LittleEndian(span[off..]);
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span[(off + 2)..]) & NLA_TYPE_MASK);
        if (len < NLA_HDRLEN || len > remaining)
        {
            throw new NetlinkProtocolException(operation, $"nla_len {len} of attribute type {type} at offset {off} out of range ({NLA_HDRLEN}..{remaining})");
        }

        (start, length) = (off + NLA_HDRLEN, len - NLA_HDRLEN);
        off += Math.Min(Align(len), remaining);
        return true;
    }

    public ulong GetBe64(ushort type, string what) => BinaryPrimitives.ReadUInt64BigEndian(Fixed(type, what, 8).Span);

    /// <summary>The operation named in errors raised while decoding these attributes.</summary>
    public string Operation => _operation;

    public bool Has(ushort type) => _attrs.ContainsKey(type);

    public bool TryGet(ushort type, out ReadOnlyMemory<byte> value) => _attrs.TryGetValue(type, out value);

    public ReadOnlyMemory<byte> Get(ushort type, string what)
    {
        if (!_attrs.TryGetValue(type, out var v))
        {
            throw new NetlinkProtocolException(_operation, $"required attribute {what} ({type}) missing");
        }
        return v;
    }

    public byte GetU8(ushort type, string what) => Fixed(type, what, 1).Span[0];

    public ushort GetU16(ushort type, string what) => BinaryPrimitives.ReadUInt16LittleEndian(Fixed(type, what, 2).Span);

    public ushort GetBe16(ushort type, string what) => BinaryPrimitives.ReadUInt16BigEndian(Fixed(type, what, 2).Span);

    public uint GetU32(ushort type, string what) => BinaryPrimitives.ReadUInt32LittleEndian(Fixed(type, what, 4).Span);

    public uint GetBe32(ushort type, string what) => BinaryPrimitives.ReadUInt32BigEndian(Fixed(type, what, 4).Span);

    public ulong GetU64(ushort type, string what) => BinaryPrimitives.ReadUInt64LittleEndian(Fixed(type, what, 8).Span);

    public ushort GetU16OrDefault(ushort type, string what, ushort fallback = 0) => Has(type) ? GetU16(type, what) : fallback;

    public uint GetU32OrDefault(ushort type, string what, uint fallback = 0) => Has(type) ? GetU32(type, what) : fallback;

    public ulong GetU64OrDefault(ushort type, string what, ulong fallback = 0) => Has(type) ? GetU64(type, what) : fallback;

    public string GetString(ushort type, string what) => NetlinkDecoder.DecodeString(Get(type, what).Span);

    public string? GetStringOrNull(ushort type) => _attrs.TryGetValue(type, out var v) ? NetlinkDecoder.DecodeString(v.Span) : null;

    public NetlinkAttributes GetNested(ushort type, string what) => Parse(Get(type, what), _operation);

    public NetlinkAttributes? GetNestedOrNull(ushort type) => _attrs.TryGetValue(type, out var v) ? Parse(v, _operation) : null;

    /// <summary>A value of at least <paramref name="size"/> bytes (longer values are accepted and truncated, as the kernel's nla_get_* do).</summary>
    public ReadOnlyMemory<byte> Fixed(ushort type, string what, int size)
    {
        var v = Get(type, what);
        if (v.Length < size)
        {
            throw new NetlinkProtocolException(_operation, $"attribute {what} ({type}) is {v.Length} bytes, expected {size}");
        }
        return v[..size];
    }
}
