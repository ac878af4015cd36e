using System.Buffers.Binary;
using System.Net;

namespace Mesh.Discovery.Dns;

/// <summary>
/// Writes DNS wire data into a caller-provided span, never past <see cref="Limit"/>. A write that does not
/// fit sets <see cref="Overflowed"/> and writes nothing, so a caller writes a whole record, checks the flag,
/// and rolls back with <see cref="Rewind"/> (used for truncation). Names are compressed against earlier
/// names in the message (case-insensitively), pointers only to offsets below 0x4000.
/// </summary>
internal ref struct DnsWireWriter
{
    private readonly Span<byte> _buf;
    private readonly Span<ushort> _table;   // offsets of name suffixes already in the message
    private int _tableCount;
    private int _pos;
    private int _limit;
    private bool _overflow;

    public DnsWireWriter(Span<byte> buffer, Span<ushort> compressionTable, int limit)
    {
        _buf = buffer;
        _table = compressionTable;
        _tableCount = 0;
        _pos = 0;
        _limit = Math.Min(limit, buffer.Length);
        _overflow = false;
    }

    public readonly int Position => _pos;
    public readonly bool Overflowed => _overflow;
    public int Limit { readonly get => _limit; set => _limit = Math.Min(value, _buf.Length); }
    public readonly Span<byte> Buffer => _buf;

    public readonly (int Position, int TableCount) Mark() => (_pos, _tableCount);

    public void Rewind((int Position, int TableCount) mark)
    {
        _pos = mark.Position;
        _tableCount = mark.TableCount;
        _overflow = false;
    }

    private bool Reserve(int n)
    {
        if (_overflow) return false;
        if (n > _limit - _pos) { _overflow = true; return false; }
        return true;
    }

    public void WriteByte(byte v)
    {
        if (Reserve(1)) _buf[_pos++] = v;
    }

    public void WriteZeros(int count)
    {
        if (!Reserve(count)) return;
        _buf.Slice(_pos, count).Clear();
        _pos += count;
    }

    public void WriteUInt16(ushort v)
    {
        if (!Reserve(2)) return;
        BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(_pos), v);
        _pos += 2;
    }

    public void WriteUInt32(uint v)
    {
        if (!Reserve(4)) return;
        BinaryPrimitives.WriteUInt32BigEndian(_buf.Slice(_pos), v);
        _pos += 4;
    }

    public void WriteBytes(ReadOnlySpan<byte> data)
    {
        if (!Reserve(data.Length)) return;
        data.CopyTo(_buf.Slice(_pos));
        _pos += data.Length;
    }

    public void WriteAddress(IPAddress address, int length)
    {
        if (!Reserve(length)) return;
        if (!address.TryWriteBytes(_buf.Slice(_pos, length), out int n) || n != length) throw new InvalidOperationException("address length");
        _pos += length;
    }

    public readonly void PatchUInt16(int offset, ushort v) => BinaryPrimitives.WriteUInt16BigEndian(_buf.Slice(offset), v);

    public void WriteName(DnsName name, bool compress) => WriteName(name.WireFormat, compress);

    /// <summary>Writes an uncompressed-wire-form name, replacing its longest known suffix with a pointer.</summary>
    public void WriteName(ReadOnlySpan<byte> wire, bool compress)
    {
        if (_overflow) return;
        // Suffix offsets enter the table only once the whole name is in the buffer: a half-written name
        // must never be matched (its tail is whatever the buffer held before).
        Span<ushort> added = stackalloc ushort[128];
        int addedCount = 0;
        int labelOffset = 0;
        while (wire[labelOffset] != 0)
        {
            if (compress)
            {
                int target = FindSuffix(wire.Slice(labelOffset));
                if (target >= 0)
                {
                    WriteUInt16((ushort)(0xC000 | target));
                    goto done;
                }
            }
            int len = wire[labelOffset];
            if (!Reserve(len + 1)) return;
            if (_pos < 0x4000) added[addedCount++] = (ushort)_pos;
            wire.Slice(labelOffset, len + 1).CopyTo(_buf.Slice(_pos));
            _pos += len + 1;
            labelOffset += len + 1;
        }
        WriteByte(0);
    done:
        if (_overflow) return;
        for (int i = 0; i < addedCount && _tableCount < _table.Length; i++) _table[_tableCount++] = added[i];
    }

    private readonly int FindSuffix(ReadOnlySpan<byte> suffix)
    {
        for (int i = 0; i < _tableCount; i++)
        {
            if (NameAtEquals(_table[i], suffix)) return _table[i];
        }
        return -1;
    }

    /// <summary>Compares the (trusted, self-written) name at <paramref name="offset"/> with an uncompressed name.</summary>
    private readonly bool NameAtEquals(int offset, ReadOnlySpan<byte> wire)
    {
        int p = offset;
        int w = 0;
        while (true)
        {
            byte l = _buf[p];
            if ((l & 0xC0) == 0xC0)
            {
                p = ((l & 0x3F) << 8) | _buf[p + 1];
                continue;
            }
            if (l != wire[w]) return false;
            if (l == 0) return true;
            if (!DnsName.EqualsIgnoreCase(_buf.Slice(p + 1, l), wire.Slice(w + 1, l))) return false;
            p += l + 1;
            w += l + 1;
        }
    }

    public void WriteQuestion(DnsQuestion q)
    {
        WriteName(q.Name, compress: true);
        WriteUInt16((ushort)q.Type);
        WriteUInt16((ushort)q.Class);
    }

    public void WriteRecord(DnsRecord r)
    {
        WriteName(r.Name, compress: true);
        WriteUInt16((ushort)r.Type);
        WriteUInt16((ushort)r.Class);
        WriteUInt32(r.Ttl);
        int lenPos = _pos;
        WriteUInt16(0);
        if (_overflow) return;
        r.Data.Write(ref this);
        if (_overflow) return;
        int rdlen = _pos - lenPos - 2;
        PatchUInt16(lenPos, (ushort)rdlen);
    }

    public void WriteEdns(DnsEdns e)
    {
        WriteByte(0);
        WriteUInt16((ushort)DnsType.OPT);
        WriteUInt16(e.UdpPayloadSize);
        WriteUInt32((uint)e.ExtendedRcode << 24 | (uint)e.Version << 16 | e.Flags);
        int lenPos = _pos;
        WriteUInt16(0);
        foreach (var o in e.Options)
        {
            WriteUInt16(o.Code);
            WriteUInt16((ushort)o.Data.Length);
            WriteBytes(o.Data);
        }
        if (_overflow) return;
        PatchUInt16(lenPos, (ushort)(_pos - lenPos - 2));
    }
}
