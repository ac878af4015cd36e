using System.Buffers.Binary;
using System.Net;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Bounds-checked big-endian reader over a whole DNS message. Every failure is a
/// <see cref="DnsFormatException"/>; nothing reads outside the span.
/// </summary>
internal ref struct DnsWireReader
{
    public const int HeaderLength = 12;

    private readonly ReadOnlySpan<byte> _msg;
    private int _pos;
    private int _end;

    public DnsWireReader(ReadOnlySpan<byte> message)
    {
        _msg = message;
        _pos = 0;
        _end = message.Length;
    }

    public readonly int Position => _pos;
    public readonly int End => _end;
    public readonly int Remaining => _end - _pos;

    public byte ReadByte()
    {
        if (_pos >= _end) throw DnsFormatException.Truncated();
        return _msg[_pos++];
    }

    public ushort ReadUInt16()
    {
        if (_end - _pos < 2) throw DnsFormatException.Truncated();
        ushort v = BinaryPrimitives.ReadUInt16BigEndian(_msg.Slice(_pos, 2));
        _pos += 2;
        return v;
    }

    public uint ReadUInt32()
    {
        if (_end - _pos < 4) throw DnsFormatException.Truncated();
        uint v = BinaryPrimitives.ReadUInt32BigEndian(_msg.Slice(_pos, 4));
        _pos += 4;
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > _end - _pos) throw DnsFormatException.Truncated();
        var s = _msg.Slice(_pos, count);
        _pos += count;
        return s;
    }

    /// <summary>Restricts reads to <paramref name="length"/> bytes from here (an RDATA); returns the previous end.</summary>
    public int PushLimit(int length)
    {
        if (length > _end - _pos) throw new DnsFormatException("RDLENGTH exceeds message");
        int old = _end;
        _end = _pos + length;
        return old;
    }

    /// <summary>Ends an RDATA region: it must have been consumed exactly.</summary>
    public void PopLimit(int oldEnd)
    {
        if (_pos != _end) throw new DnsFormatException("RDATA length mismatch");
        _end = oldEnd;
    }

    public DnsName ReadName()
    {
        Span<byte> buf = stackalloc byte[DnsName.MaxWireLength];
        int len = ReadNameInto(buf);
        return DnsName.FromValidatedWire(buf[..len]);
    }

    public void SkipName()
    {
        Span<byte> buf = stackalloc byte[DnsName.MaxWireLength];
        ReadNameInto(buf);
    }

    /// <summary>
    /// Reads a possibly compressed name into <paramref name="dest"/> (≥255 bytes) in uncompressed wire form and
    /// returns its length. Compression pointers must point strictly before the start of the label run that
    /// contains them and past the header: that forbids forward pointers and makes loops impossible.
    /// Label types 01/10 (RFC 6891 §5 / obsolete bitstring labels) are rejected; labels ≤63, name ≤255.
    /// </summary>
    public int ReadNameInto(scoped Span<byte> dest)
    {
        int pos = _pos;
        int limit = _end;          // before the first jump, the name must lie inside the current region
        int runStart = pos;        // start of the current run of labels
        int after = -1;            // where reading continues after the name
        int written = 0;
        while (true)
        {
            if (pos >= limit) throw DnsFormatException.Truncated();
            byte len = _msg[pos];
            switch (len & 0xC0)
            {
                case 0x00:
                    if (len == 0)
                    {
                        dest[written++] = 0; // written ≤ 254 here, checked below
                        _pos = after < 0 ? pos + 1 : after;
                        return written;
                    }
                    if (len > limit - pos - 1) throw DnsFormatException.Truncated();
                    if (written + len + 2 > DnsName.MaxWireLength) throw new DnsFormatException("name longer than 255 bytes");
                    dest[written] = len;
                    _msg.Slice(pos + 1, len).CopyTo(dest.Slice(written + 1));
                    written += len + 1;
                    pos += len + 1;
                    break;
                case 0xC0:
                    if (pos + 1 >= limit) throw DnsFormatException.Truncated();
                    int target = ((len & 0x3F) << 8) | _msg[pos + 1];
                    if (after < 0) after = pos + 2;
                    if (target >= runStart) throw new DnsFormatException("forward or looping compression pointer");
                    if (target < HeaderLength) throw new DnsFormatException("compression pointer into the header");
                    pos = target;
                    runStart = target;
                    limit = _msg.Length;
                    break;
                default:
                    throw new DnsFormatException("unsupported label type");
            }
        }
    }

    public DnsQuestion ReadQuestion()
    {
        var name = ReadName();
        var type = (DnsType)ReadUInt16();
        var cls = (DnsClass)ReadUInt16();
        return new DnsQuestion(name, type, cls);
    }

    /// <summary>Reads one RR. OPT comes back as <paramref name="edns"/> (record null).</summary>
    public DnsRecord? ReadRecord(out DnsEdns? edns)
    {
        edns = null;
        var name = ReadName();
        var type = (DnsType)ReadUInt16();
        ushort cls = ReadUInt16();
        uint ttl = ReadUInt32();
        ushort rdlength = ReadUInt16();
        int oldEnd = PushLimit(rdlength);
        if (type == DnsType.OPT)
        {
            if (!name.IsRoot) throw new DnsFormatException("OPT owner must be the root");
            var options = new List<DnsEdnsOption>();
            while (Remaining > 0)
            {
                ushort code = ReadUInt16();
                ushort olen = ReadUInt16();
                options.Add(new DnsEdnsOption(code, ReadBytes(olen).ToArray()));
            }
            PopLimit(oldEnd);
            edns = new DnsEdns
            {
                UdpPayloadSize = cls,
                ExtendedRcode = (byte)(ttl >> 24),
                Version = (byte)(ttl >> 16),
                Flags = (ushort)ttl,
                Options = options,
            };
            return null;
        }
        DnsRecordData data = ReadRecordData(type, rdlength);
        PopLimit(oldEnd);
        return new DnsRecord(name, type, (DnsClass)cls, ttl, data);
    }

    /// <summary>
    /// Validates one RR without keeping it. Returns true for OPT (with its CLASS and TTL fields), whose options
    /// are checked for framing only; other records are fully parsed (and discarded).
    /// </summary>
    public bool ReadOptOrRecord(out ushort cls, out uint ttl)
    {
        Span<byte> name = stackalloc byte[DnsName.MaxWireLength];
        int nameLen = ReadNameInto(name);
        var type = (DnsType)ReadUInt16();
        cls = ReadUInt16();
        ttl = ReadUInt32();
        ushort rdlength = ReadUInt16();
        int oldEnd = PushLimit(rdlength);
        if (type == DnsType.OPT)
        {
            if (nameLen != 1) throw new DnsFormatException("OPT owner must be the root");
            while (Remaining > 0)
            {
                ReadUInt16();
                ReadBytes(ReadUInt16());
            }
            PopLimit(oldEnd);
            return true;
        }
        ReadRecordData(type, rdlength);
        PopLimit(oldEnd);
        return false;
    }

    private DnsRecordData ReadRecordData(DnsType type, int rdlength)
    {
        switch (type)
        {
            case DnsType.A:
                if (rdlength != 4) throw new DnsFormatException("A RDATA must be 4 bytes");
                return new ARecordData(new IPAddress(ReadBytes(4)));
            case DnsType.AAAA:
                if (rdlength != 16) throw new DnsFormatException("AAAA RDATA must be 16 bytes");
                return new AaaaRecordData(new IPAddress(ReadBytes(16)));
            case DnsType.NS:
            case DnsType.CNAME:
            case DnsType.PTR:
                return new NameRecordData(ReadName());
            case DnsType.MX:
            {
                ushort pref = ReadUInt16();
                return new MxRecordData(pref, ReadName());
            }
            case DnsType.SRV:
            {
                ushort prio = ReadUInt16();
                ushort weight = ReadUInt16();
                ushort port = ReadUInt16();
                return new SrvRecordData(prio, weight, port, ReadName());
            }
            case DnsType.SOA:
            {
                var mname = ReadName();
                var rname = ReadName();
                return new SoaRecordData(mname, rname, ReadUInt32(), ReadUInt32(), ReadUInt32(), ReadUInt32(), ReadUInt32());
            }
            case DnsType.TXT:
            {
                if (rdlength == 0) throw new DnsFormatException("TXT needs at least one character-string");
                var strings = new List<byte[]>();
                while (Remaining > 0)
                {
                    byte l = ReadByte();
                    strings.Add(ReadBytes(l).ToArray());
                }
                return new TxtRecordData(strings);
            }
            default:
                return new RawRecordData(ReadBytes(rdlength).ToArray());
        }
    }
}
