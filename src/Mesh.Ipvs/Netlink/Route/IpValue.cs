using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>
/// An IPv4 or IPv6 address as a value: what a dump of 100,000 neighbour entries holds without an
/// <see cref="IPAddress"/> object and a string for each. IPv4 sits in the low 32 bits.
/// </summary>
public readonly record struct IpValue(UInt128 Bits, bool IsV6)
{
    public static IpValue V4(uint address) => new(address, false);

    /// <summary>4 or 16 bytes in network order (an NDA_DST); anything else is not an address.</summary>
    public static bool TryRead(ReadOnlySpan<byte> bytes, out IpValue value)
    {
        value = bytes.Length switch
        {
            4 => V4(BinaryPrimitives.ReadUInt32BigEndian(bytes)),
            16 => new IpValue(BinaryPrimitives.ReadUInt128BigEndian(bytes), true),
            _ => default,
        };
        return bytes.Length is 4 or 16;
    }

    /// <summary>
    /// A dotted-quad IPv4 address ("10.255.0.5"), without allocating: each part 0-255 in decimal, no leading zeros past
    /// one digit (the canonical text the store keeps). Anything else, IPv6 included, is false.
    /// </summary>
    public static bool TryParseV4(ReadOnlySpan<char> text, out IpValue value)
    {
        value = default;
        uint address = 0;
        int parts = 0, i = 0;
        while (parts < 4)
        {
            int start = i, part = 0;
            while (i < text.Length && i - start < 3 && char.IsAsciiDigit(text[i]))
            {
                part = (part * 10) + (text[i++] - '0');
            }

            if (i == start || part > 255 || (text[start] == '0' && i - start > 1))
            {
                return false;
            }

            address = (address << 8) | (uint)part;
            parts++;
            if (parts < 4)
            {
                if (i >= text.Length || text[i] != '.')
                {
                    return false;
                }

                i++;
            }
        }

        if (i != text.Length)
        {
            return false;
        }

        value = V4(address);
        return true;
    }

    /// <summary>Any IPv4 or IPv6 text <see cref="IPAddress.Parse(string)"/> takes; a <see cref="FormatException"/> naming it otherwise.</summary>
    public static IpValue Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (TryParseV4(text, out var v4))
        {
            return v4;
        }

        Span<byte> bytes = stackalloc byte[16];
        return IPAddress.TryParse(text, out var address) && address.TryWriteBytes(bytes, out var written) && TryRead(bytes[..written], out var value)
            ? value
            : throw new FormatException($"'{text}' is not an IP address");
    }

    /// <summary>The IPv4 address in host order; only for <see cref="IsV6"/> false.</summary>
    public uint V4Bits => IsV6 ? throw new InvalidOperationException($"{this} is not an IPv4 address") : (uint)Bits;

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        if (IsV6)
        {
            BinaryPrimitives.WriteUInt128BigEndian(bytes, Bits);
            return new IPAddress(bytes);
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)Bits);
        return new IPAddress(bytes[..4]);
    }

    public AddressFamily Family => IsV6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

    public override string ToString() => ToIPAddress().ToString();
}
