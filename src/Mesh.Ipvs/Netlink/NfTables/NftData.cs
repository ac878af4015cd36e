using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// Bytes as a register or a set key holds them, compared by value. The factories say the byte order: payload fields
/// (addresses, ports) are network order, meta and ct values (mark, l4proto) host order.
/// </summary>
public readonly struct NftData : IEquatable<NftData>
{
    private readonly byte[]? _bytes;

    public NftData(ReadOnlySpan<byte> bytes) => _bytes = bytes.ToArray();

    private NftData(byte[] bytes, bool _) => _bytes = bytes;

    public ReadOnlySpan<byte> Span => _bytes ?? [];

    public int Length => _bytes?.Length ?? 0;

    public static NftData Empty { get; } = new([], false);

    public static NftData U8(byte value) => new([value], false);

    /// <summary>A 32-bit value in host order (meta mark, ct status, numgen results).</summary>
    public static NftData U32(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return new(b, false);
    }

    /// <summary>A 16-bit value in network order (ports).</summary>
    public static NftData Be16(ushort value)
    {
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        return new(b, false);
    }

    public static NftData Be32(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, value);
        return new(b, false);
    }

    public static NftData Ipv4(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork) throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        return new(address.GetAddressBytes(), false);
    }

    public static NftData Ipv4(string address) => Ipv4(IPAddress.Parse(address));

    /// <summary>An interface name as iifname/oifname compare it: NUL-padded to IFNAMSIZ (16).</summary>
    public static NftData InterfaceName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var b = new byte[16];
        if (Encoding.ASCII.GetByteCount(name) > 15 || name.Contains('\0', StringComparison.Ordinal)) throw new ArgumentException($"interface name '{name}' is longer than 15 bytes or contains NUL", nameof(name));
        Encoding.ASCII.GetBytes(name, b);
        return new(b, false);
    }

    /// <summary>A concatenation (<c>a . b</c>): each part padded to a 4-byte register boundary, as the kernel lays it out.</summary>
    public static NftData Concat(params NftData[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        var b = new byte[parts.Sum(p => (p.Length + 3) & ~3)];
        int off = 0;
        foreach (var p in parts)
        {
            p.Span.CopyTo(b.AsSpan(off));
            off += (p.Length + 3) & ~3;
        }
        return new(b, false);
    }

    public bool Equals(NftData other) => Span.SequenceEqual(other.Span);

    public override bool Equals(object? obj) => obj is NftData d && Equals(d);

    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(Span);
        return h.ToHashCode();
    }

    public static bool operator ==(NftData left, NftData right) => left.Equals(right);

    public static bool operator !=(NftData left, NftData right) => !left.Equals(right);

    public override string ToString() => "0x" + Convert.ToHexStringLower(Span);
}
