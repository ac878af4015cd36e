using System.Buffers.Binary;
using System.Text;

namespace Mesh.LoadTests.Steps;

/// <summary>
/// Just enough RFC 1035 to load-test a resolver: encode a one-question query, read a reply's
/// header. Deliberately independent of the project's DNS codec (that is what is under test).
/// </summary>
public static class DnsWire
{
    public const ushort TypeA = 1;
    public const ushort ClassIn = 1;

    /// <summary>Writes a recursion-desired query for (<paramref name="name"/>, <paramref name="qtype"/>, IN). Returns its length.</summary>
    public static int EncodeQuery(Span<byte> buffer, ushort id, string name, ushort qtype = TypeA)
    {
        BinaryPrimitives.WriteUInt16BigEndian(buffer, id);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[2..], 0x0100); // QR=0 opcode=0 RD=1
        BinaryPrimitives.WriteUInt16BigEndian(buffer[4..], 1);      // QDCOUNT
        buffer[6..12].Clear();                                      // AN/NS/AR counts
        int p = 12;
        foreach (var label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            int n = Encoding.ASCII.GetBytes(label, buffer[(p + 1)..]);
            if (n is 0 or > 63) throw new ArgumentException($"bad DNS label in '{name}'", nameof(name));
            buffer[p] = (byte)n;
            p += n + 1;
        }
        buffer[p++] = 0;
        if (p > 12 + 255) throw new ArgumentException($"DNS name too long: '{name}'", nameof(name));
        BinaryPrimitives.WriteUInt16BigEndian(buffer[p..], qtype);
        BinaryPrimitives.WriteUInt16BigEndian(buffer[(p + 2)..], ClassIn);
        return p + 4;
    }

    public readonly record struct Header(ushort Id, bool IsResponse, bool Truncated, int Rcode, int AnswerCount);

    public static bool TryReadHeader(ReadOnlySpan<byte> message, out Header header)
    {
        header = default;
        if (message.Length < 12) return false;
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(message);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        header = new Header(id, (flags & 0x8000) != 0, (flags & 0x0200) != 0, flags & 0x000F, BinaryPrimitives.ReadUInt16BigEndian(message[6..]));
        return true;
    }

    private static readonly string[] RcodeNames =
        ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"];

    public static string RcodeName(int rcode) => (uint)rcode < (uint)RcodeNames.Length ? RcodeNames[rcode] : "RCODE" + rcode;

    public static int ParseRcode(string name)
    {
        int i = Array.IndexOf(RcodeNames, name.Trim().ToUpperInvariant());
        if (i >= 0) return i;
        if (int.TryParse(name, out var n) && n is >= 0 and < 16) return n;
        throw new FormatException($"unknown DNS rcode '{name}'");
    }
}
