using System.Net;
using System.Net.Sockets;
using Mesh.Ipvs.Netlink;
using static Mesh.Ipvs.IpvsConstants;

namespace Mesh.Ipvs.Codec;

/// <summary>union nf_inet_addr (16 bytes; an IPv4 address fills the first 4) and AF_* ↔ AddressFamily.</summary>
internal static class AddressCodec
{
    public const int NfInetAddrSize = 16;

    public static ushort ToAf(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => AF_INET,
        AddressFamily.InterNetworkV6 => AF_INET6,
        _ => throw new ArgumentException($"unsupported address family {family}"),
    };

    public static AddressFamily FromAf(ushort af, string operation) => af switch
    {
        AF_INET => AddressFamily.InterNetwork,
        AF_INET6 => AddressFamily.InterNetworkV6,
        _ => throw new NetlinkProtocolException(operation, $"unknown address family {af}"),
    };

    public static void Put(NetlinkWriter w, ushort type, IPAddress address)
    {
        Span<byte> b = stackalloc byte[NfInetAddrSize];
        b.Clear();
        if (!address.TryWriteBytes(b, out _)) throw new ArgumentException($"cannot encode address {address}");
        w.PutAttribute(type, b);
    }

    public static IPAddress Get(NetlinkAttributes a, ushort type, string what, AddressFamily family)
    {
        int size = family == AddressFamily.InterNetworkV6 ? 16 : 4;
        return new IPAddress(a.Fixed(type, what, size).Span);
    }
}
