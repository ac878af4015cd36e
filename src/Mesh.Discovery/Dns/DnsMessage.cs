using System.Buffers.Binary;

namespace Mesh.Discovery.Dns;

/// <summary>The fixed 12-byte header (RFC 1035 §4.1.1).</summary>
public readonly record struct DnsHeader(ushort Id, ushort Flags, ushort QuestionCount, ushort AnswerCount, ushort AuthorityCount, ushort AdditionalCount)
{
    public const ushort QrFlag = 0x8000;
    public const ushort AaFlag = 0x0400;
    public const ushort TcFlag = 0x0200;
    public const ushort RdFlag = 0x0100;
    public const ushort RaFlag = 0x0080;
    public const ushort ZFlag = 0x0040;
    public const ushort AdFlag = 0x0020;
    public const ushort CdFlag = 0x0010;

    public bool IsResponse => (Flags & QrFlag) != 0;
    public DnsOpCode OpCode => (DnsOpCode)((Flags >> 11) & 0xF);
    public bool IsTruncated => (Flags & TcFlag) != 0;
    public bool RecursionDesired => (Flags & RdFlag) != 0;
    public DnsResponseCode ResponseCode => (DnsResponseCode)(Flags & 0xF);

    /// <summary>Reads a header; false when fewer than 12 bytes are given.</summary>
    public static bool TryRead(ReadOnlySpan<byte> message, out DnsHeader header)
    {
        if (message.Length < 12) { header = default; return false; }
        header = new DnsHeader(
            BinaryPrimitives.ReadUInt16BigEndian(message),
            BinaryPrimitives.ReadUInt16BigEndian(message[2..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[4..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[6..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[8..]),
            BinaryPrimitives.ReadUInt16BigEndian(message[10..]));
        return true;
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Id);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], Flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], QuestionCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], AnswerCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], AuthorityCount);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], AdditionalCount);
    }
}

/// <summary>
/// A whole DNS message. <see cref="Parse(ReadOnlySpan{byte})"/> is strict (any malformation → internal
/// DnsFormatException, use <see cref="TryParse"/> from outside); <see cref="WriteTo"/> compresses names and
/// truncates (TC) to a size limit.
/// </summary>
public sealed class DnsMessage
{
    /// <summary>Largest DNS message (TCP length prefix is 16 bits).</summary>
    public const int MaxMessageSize = 65535;
    /// <summary>Classic UDP limit without EDNS (RFC 1035 §4.2.1).</summary>
    public const int ClassicUdpSize = 512;

    public ushort Id { get; set; }
    /// <summary>Header flag bits except the RCODE nibble (which is <see cref="ResponseCode"/>).</summary>
    public ushort Flags { get; set; }

    public bool IsResponse { get => Get(DnsHeader.QrFlag); set => Set(DnsHeader.QrFlag, value); }
    public DnsOpCode OpCode
    {
        get => (DnsOpCode)((Flags >> 11) & 0xF);
        set => Flags = (ushort)((Flags & ~0x7800) | (((int)value & 0xF) << 11));
    }
    public bool IsAuthoritative { get => Get(DnsHeader.AaFlag); set => Set(DnsHeader.AaFlag, value); }
    public bool IsTruncated { get => Get(DnsHeader.TcFlag); set => Set(DnsHeader.TcFlag, value); }
    public bool RecursionDesired { get => Get(DnsHeader.RdFlag); set => Set(DnsHeader.RdFlag, value); }
    public bool RecursionAvailable { get => Get(DnsHeader.RaFlag); set => Set(DnsHeader.RaFlag, value); }
    public bool AuthenticData { get => Get(DnsHeader.AdFlag); set => Set(DnsHeader.AdFlag, value); }
    public bool CheckingDisabled { get => Get(DnsHeader.CdFlag); set => Set(DnsHeader.CdFlag, value); }

    /// <summary>The 4-bit header RCODE. With EDNS the full code is <c>(Edns.ExtendedRcode &lt;&lt; 4) | ResponseCode</c>.</summary>
    public DnsResponseCode ResponseCode
    {
        get => (DnsResponseCode)(Flags & 0xF);
        set => Flags = (ushort)((Flags & ~0xF) | ((int)value & 0xF));
    }

    public List<DnsQuestion> Questions { get; } = [];
    public List<DnsRecord> Answers { get; } = [];
    public List<DnsRecord> Authorities { get; } = [];
    /// <summary>Additional records, without the OPT pseudo-record (that is <see cref="Edns"/>).</summary>
    public List<DnsRecord> Additionals { get; } = [];
    public DnsEdns? Edns { get; set; }

    private bool Get(ushort bit) => (Flags & bit) != 0;
    private void Set(ushort bit, bool on) => Flags = on ? (ushort)(Flags | bit) : (ushort)(Flags & ~bit);

    /// <summary>Parses a message; false (never an exception) if it is malformed in any way.</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out DnsMessage? result)
    {
        try
        {
            result = Parse(message);
            return true;
        }
        catch (DnsFormatException)
        {
            result = null;
            return false;
        }
    }

    /// <summary>Strict parse. Throws the internal DnsFormatException on any malformation.</summary>
    internal static DnsMessage Parse(ReadOnlySpan<byte> message)
    {
        if (!DnsHeader.TryRead(message, out var h)) throw DnsFormatException.Truncated();
        var m = new DnsMessage { Id = h.Id, Flags = h.Flags };
        var r = new DnsWireReader(message);
        r.ReadBytes(DnsWireReader.HeaderLength);
        // Every entry needs ≥4 (question) / ≥11 (record) bytes: reject absurd counts before allocating.
        if ((long)h.QuestionCount * 5 + ((long)h.AnswerCount + h.AuthorityCount + h.AdditionalCount) * 11 > r.Remaining)
            throw new DnsFormatException("section counts exceed message length");
        for (int i = 0; i < h.QuestionCount; i++) m.Questions.Add(r.ReadQuestion());
        ReadSection(ref r, h.AnswerCount, m.Answers, m, allowOpt: false);
        ReadSection(ref r, h.AuthorityCount, m.Authorities, m, allowOpt: false);
        ReadSection(ref r, h.AdditionalCount, m.Additionals, m, allowOpt: true);
        if (r.Remaining != 0) throw new DnsFormatException("trailing bytes after the last record");
        return m;
    }

    private static void ReadSection(ref DnsWireReader r, int count, List<DnsRecord> list, DnsMessage m, bool allowOpt)
    {
        for (int i = 0; i < count; i++)
        {
            var rec = r.ReadRecord(out var edns);
            if (rec is not null)
            {
                list.Add(rec);
                continue;
            }
            if (!allowOpt) throw new DnsFormatException("OPT outside the additional section");
            if (m.Edns is not null) throw new DnsFormatException("more than one OPT record");
            m.Edns = edns;
        }
    }

    /// <summary>Writes the message into a new array (no truncation limit other than 65535).</summary>
    public byte[] ToArray(int maxSize = MaxMessageSize)
    {
        var buf = new byte[Math.Min(maxSize, MaxMessageSize)];
        int n = WriteTo(buf, maxSize, out _);
        return buf.AsSpan(0, n).ToArray();
    }

    /// <summary>
    /// Writes the message with name compression into <paramref name="destination"/>, using at most
    /// <paramref name="maxSize"/> bytes. If answer or authority records do not fit, the records that fit are
    /// kept and TC is set (RFC 2181 §9); additional records that do not fit are dropped without TC. The OPT
    /// record is always kept when present (RFC 6891 §7). Returns the length written.
    /// </summary>
    public int WriteTo(Span<byte> destination, int maxSize, out bool truncated)
    {
        int limit = Math.Min(Math.Min(maxSize, MaxMessageSize), destination.Length);
        int optLen = Edns?.WireLength ?? 0;
        if (limit < DnsWireReader.HeaderLength + optLen) throw new ArgumentException("destination too small for the header", nameof(destination));
        Span<ushort> table = stackalloc ushort[128];
        var w = new DnsWireWriter(destination, table, limit - optLen);
        truncated = false;
        w.WriteZeros(DnsWireReader.HeaderLength);
        int qd = WriteQuestions(ref w, Questions, ref truncated);
        int an = truncated ? 0 : WriteRecords(ref w, Answers, ref truncated);
        int ns = truncated ? 0 : WriteRecords(ref w, Authorities, ref truncated);
        bool dropped = false;
        int ar = truncated ? 0 : WriteRecords(ref w, Additionals, ref dropped);
        if (Edns is not null)
        {
            w.Limit = limit;
            w.WriteEdns(Edns);
            ar++;
        }
        ushort flags = truncated ? (ushort)(Flags | DnsHeader.TcFlag) : Flags;
        new DnsHeader(Id, flags, (ushort)qd, (ushort)an, (ushort)ns, (ushort)ar).Write(destination);
        return w.Position;
    }

    private static int WriteQuestions(ref DnsWireWriter w, List<DnsQuestion> items, ref bool truncated)
    {
        int n = 0;
        foreach (var q in items)
        {
            var mark = w.Mark();
            w.WriteQuestion(q);
            if (w.Overflowed) { w.Rewind(mark); truncated = true; break; }
            n++;
        }
        return n;
    }

    private static int WriteRecords(ref DnsWireWriter w, List<DnsRecord> items, ref bool truncated)
    {
        int n = 0;
        foreach (var r in items)
        {
            var mark = w.Mark();
            w.WriteRecord(r);
            if (w.Overflowed) { w.Rewind(mark); truncated = true; break; }
            n++;
        }
        return n;
    }

    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($";; id {Id} {OpCode} {ResponseCode} flags 0x{Flags:x4}");
        foreach (var q in Questions) sb.Append("\n;").Append(q);
        foreach (var r in Answers) sb.Append("\nAN ").Append(r);
        foreach (var r in Authorities) sb.Append("\nNS ").Append(r);
        foreach (var r in Additionals) sb.Append("\nAR ").Append(r);
        if (Edns is not null) sb.Append($"\nOPT udp={Edns.UdpPayloadSize} v{Edns.Version} flags 0x{Edns.Flags:x4} options {Edns.Options.Count}");
        return sb.ToString();
    }
}
