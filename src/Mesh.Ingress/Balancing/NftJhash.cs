using System.Net;
using System.Numerics;

namespace Mesh.Ingress.Balancing;

/// <summary>
/// The kernel's <c>jhash ip saddr mod M seed S</c> (nft_hash.c: Bob Jenkins' lookup3 <c>jhash()</c> over the 4 address
/// bytes, then <c>reciprocal_scale</c> into 0..M-1), so <c>mesh trace --from</c> can say which bucket, and so which
/// task, the sandbox picks for a client. Checked against the kernel's own answers in the unit tests.
/// </summary>
public static class NftJhash
{
    public static int Bucket(IPAddress source, uint modulus, uint seed)
    {
        ArgumentNullException.ThrowIfNull(source);
        var k = source.MapToIPv4().GetAddressBytes();
        uint a, b, c;
        a = b = c = 0xdeadbeef + (uint)k.Length + seed;

        // lookup3's tail for 4 bytes: the bytes as they sit in the register (network order), little-endian words.
        a += (uint)k[3] << 24;
        a += (uint)k[2] << 16;
        a += (uint)k[1] << 8;
        a += k[0];

        c ^= b; c -= BitOperations.RotateLeft(b, 14);
        a ^= c; a -= BitOperations.RotateLeft(c, 11);
        b ^= a; b -= BitOperations.RotateLeft(a, 25);
        c ^= b; c -= BitOperations.RotateLeft(b, 16);
        a ^= c; a -= BitOperations.RotateLeft(c, 4);
        b ^= a; b -= BitOperations.RotateLeft(a, 14);
        c ^= b; c -= BitOperations.RotateLeft(b, 24);
        return (int)(((ulong)c * modulus) >> 32);
    }
}
