using System.Buffers.Binary;
using System.Globalization;

namespace Mesh.Ipvs.Netlink.Route;

/// <summary>A 48-bit MAC address between its 6 bytes, a <see cref="ulong"/> (low 48 bits) and "aa:bb:cc:dd:ee:ff".</summary>
public static class MacText
{
    /// <summary>6 bytes (NDA_LLADDR, IFLA_ADDRESS) → the value in the low 48 bits.</summary>
    public static ulong Read(ReadOnlySpan<byte> mac) =>
        mac.Length == 6
            ? ((ulong)BinaryPrimitives.ReadUInt16BigEndian(mac) << 32) | BinaryPrimitives.ReadUInt32BigEndian(mac[2..])
            : throw new ArgumentException($"a MAC address has 6 bytes, not {mac.Length}", nameof(mac));

    /// <summary>Lower-case "aa:bb:cc:dd:ee:ff", as iproute2 prints it.</summary>
    public static string Format(ReadOnlySpan<byte> mac) => Format(Read(mac));

    public static string Format(ulong mac) => string.Create(17, mac, static (chars, value) =>
    {
        for (int i = 0; i < 6; i++)
        {
            var b = (byte)(value >> (40 - (8 * i)));
            if (i > 0)
            {
                chars[(3 * i) - 1] = ':';
            }

            b.TryFormat(chars[(3 * i)..], out _, "x2", CultureInfo.InvariantCulture);
        }
    });

    /// <summary>"aa:bb:cc:dd:ee:ff" (either case) → the value; false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out ulong mac)
    {
        mac = 0;
        if (text.Length != 17)
        {
            return false;
        }

        for (int i = 0; i < 6; i++)
        {
            if ((i > 0 && text[(3 * i) - 1] != ':')
                || !byte.TryParse(text.Slice(3 * i, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b))
            {
                mac = 0;
                return false;
            }

            mac = (mac << 8) | b;
        }

        return true;
    }
}
