using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Model;

/// <summary>An IPv4 prefix; the unit of address allocation on an overlay.</summary>
public readonly record struct Cidr(uint Network, int PrefixLength)
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    public uint Broadcast => Network | ~Mask;

    public bool Contains(IPAddress ip) =>
        ip.AddressFamily == AddressFamily.InterNetwork && (ToUInt32(ip) & Mask) == Network;

    public static bool TryParse(string? text, out Cidr cidr)
    {
        cidr = default;
        var parts = text?.Split('/');
        if (parts is not { Length: 2 } || !IPAddress.TryParse(parts[0], out var ip) || ip.AddressFamily != AddressFamily.InterNetwork
            || parts[0].Split('.').Length != 4
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var len) || len > 32)
        {
            return false;
        }

        var mask = len == 0 ? 0 : uint.MaxValue << (32 - len);
        var network = ToUInt32(ip);
        if ((network & mask) != network)
        {
            return false; // host bits set: almost certainly a typo
        }

        cidr = new Cidr(network, len);
        return true;
    }

    public static uint ToUInt32(IPAddress ip) => BinaryPrimitives.ReadUInt32BigEndian(ip.GetAddressBytes());

    public static IPAddress ToAddress(uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{ToAddress(Network)}/{PrefixLength}");
}
