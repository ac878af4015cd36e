using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Dns;

/// <summary>Typed RDATA of a resource record. Subclasses have value equality.</summary>
public abstract class DnsRecordData : IEquatable<DnsRecordData>
{
    private protected DnsRecordData() { }

    /// <summary>True if this RDATA may be attached to a record of type <paramref name="type"/>.</summary>
    public abstract bool IsValidFor(DnsType type);

    internal abstract void Write(ref DnsWireWriter writer);

    public abstract bool Equals(DnsRecordData? other);
    public override bool Equals(object? obj) => obj is DnsRecordData d && Equals(d);
    public abstract override int GetHashCode();
}

/// <summary>A: an IPv4 address.</summary>
public sealed class ARecordData : DnsRecordData
{
    public ARecordData(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork) throw new ArgumentException("A needs an IPv4 address", nameof(address));
        Address = address;
    }
    public IPAddress Address { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.A;
    internal override void Write(ref DnsWireWriter w) => w.WriteAddress(Address, 4);
    public override bool Equals(DnsRecordData? other) => other is ARecordData o && o.Address.Equals(Address);
    public override int GetHashCode() => Address.GetHashCode();
    public override string ToString() => Address.ToString();
}

/// <summary>AAAA: an IPv6 address (RFC 3596).</summary>
public sealed class AaaaRecordData : DnsRecordData
{
    public AaaaRecordData(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6) throw new ArgumentException("AAAA needs an IPv6 address", nameof(address));
        Address = address;
    }
    public IPAddress Address { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.AAAA;
    internal override void Write(ref DnsWireWriter w) => w.WriteAddress(Address, 16);
    public override bool Equals(DnsRecordData? other) => other is AaaaRecordData o && o.Address.Equals(Address);
    public override int GetHashCode() => Address.GetHashCode();
    public override string ToString() => Address.ToString();
}

/// <summary>RDATA that is a single domain name: PTR, CNAME, NS (compressible, RFC 1035).</summary>
public sealed class NameRecordData : DnsRecordData
{
    public NameRecordData(DnsName name) => Name = name;
    public DnsName Name { get; }
    public override bool IsValidFor(DnsType type) => type is DnsType.PTR or DnsType.CNAME or DnsType.NS;
    internal override void Write(ref DnsWireWriter w) => w.WriteName(Name, compress: true);
    public override bool Equals(DnsRecordData? other) => other is NameRecordData o && o.Name.Equals(Name);
    public override int GetHashCode() => Name.GetHashCode();
    public override string ToString() => Name + ".";
}

/// <summary>MX (RFC 1035 §3.3.9).</summary>
public sealed class MxRecordData : DnsRecordData
{
    public MxRecordData(ushort preference, DnsName exchange) { Preference = preference; Exchange = exchange; }
    public ushort Preference { get; }
    public DnsName Exchange { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.MX;
    internal override void Write(ref DnsWireWriter w) { w.WriteUInt16(Preference); w.WriteName(Exchange, compress: true); }
    public override bool Equals(DnsRecordData? other) => other is MxRecordData o && o.Preference == Preference && o.Exchange.Equals(Exchange);
    public override int GetHashCode() => HashCode.Combine(Preference, Exchange);
    public override string ToString() => $"{Preference} {Exchange}.";
}

/// <summary>SRV (RFC 2782). The target is never compressed on write; compressed targets are accepted on read (RFC 3597 §4).</summary>
public sealed class SrvRecordData : DnsRecordData
{
    public SrvRecordData(ushort priority, ushort weight, ushort port, DnsName target)
    { Priority = priority; Weight = weight; Port = port; Target = target; }
    public ushort Priority { get; }
    public ushort Weight { get; }
    public ushort Port { get; }
    public DnsName Target { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.SRV;
    internal override void Write(ref DnsWireWriter w)
    {
        w.WriteUInt16(Priority); w.WriteUInt16(Weight); w.WriteUInt16(Port); w.WriteName(Target, compress: false);
    }
    public override bool Equals(DnsRecordData? other) =>
        other is SrvRecordData o && o.Priority == Priority && o.Weight == Weight && o.Port == Port && o.Target.Equals(Target);
    public override int GetHashCode() => HashCode.Combine(Priority, Weight, Port, Target);
    public override string ToString() => $"{Priority} {Weight} {Port} {Target}.";
}

/// <summary>SOA (RFC 1035 §3.3.13).</summary>
public sealed class SoaRecordData : DnsRecordData
{
    public SoaRecordData(DnsName primary, DnsName mailbox, uint serial, uint refresh, uint retry, uint expire, uint minimum)
    {
        Primary = primary; Mailbox = mailbox; Serial = serial; Refresh = refresh; Retry = retry; Expire = expire; Minimum = minimum;
    }
    public DnsName Primary { get; }
    public DnsName Mailbox { get; }
    public uint Serial { get; }
    public uint Refresh { get; }
    public uint Retry { get; }
    public uint Expire { get; }
    public uint Minimum { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.SOA;
    internal override void Write(ref DnsWireWriter w)
    {
        w.WriteName(Primary, compress: true); w.WriteName(Mailbox, compress: true);
        w.WriteUInt32(Serial); w.WriteUInt32(Refresh); w.WriteUInt32(Retry); w.WriteUInt32(Expire); w.WriteUInt32(Minimum);
    }
    public override bool Equals(DnsRecordData? other) =>
        other is SoaRecordData o && o.Primary.Equals(Primary) && o.Mailbox.Equals(Mailbox) && o.Serial == Serial &&
        o.Refresh == Refresh && o.Retry == Retry && o.Expire == Expire && o.Minimum == Minimum;
    public override int GetHashCode() => HashCode.Combine(Primary, Mailbox, Serial, Refresh, Retry, Expire, Minimum);
    public override string ToString() => $"{Primary}. {Mailbox}. {Serial} {Refresh} {Retry} {Expire} {Minimum}";
}

/// <summary>TXT: one or more character-strings of up to 255 bytes each.</summary>
public sealed class TxtRecordData : DnsRecordData
{
    public TxtRecordData(IReadOnlyList<byte[]> strings)
    {
        if (strings.Count == 0) throw new ArgumentException("TXT needs at least one character-string", nameof(strings));
        foreach (var s in strings)
        {
            if (s.Length > 255) throw new ArgumentException("a TXT character-string is at most 255 bytes", nameof(strings));
        }
        Strings = strings;
    }
    public TxtRecordData(params string[] strings) : this(strings.Select(System.Text.Encoding.UTF8.GetBytes).ToArray()) { }
    public IReadOnlyList<byte[]> Strings { get; }
    public override bool IsValidFor(DnsType type) => type == DnsType.TXT;
    internal override void Write(ref DnsWireWriter w)
    {
        foreach (var s in Strings) { w.WriteByte((byte)s.Length); w.WriteBytes(s); }
    }
    public override bool Equals(DnsRecordData? other)
    {
        if (other is not TxtRecordData o || o.Strings.Count != Strings.Count) return false;
        for (int i = 0; i < Strings.Count; i++)
        {
            if (!o.Strings[i].AsSpan().SequenceEqual(Strings[i])) return false;
        }
        return true;
    }
    public override int GetHashCode() => Strings.Count;
    public override string ToString() => string.Join(" ", Strings.Select(s => "\"" + System.Text.Encoding.UTF8.GetString(s) + "\""));
}

/// <summary>RDATA of a type the codec does not interpret, kept verbatim (RFC 3597).</summary>
public sealed class RawRecordData : DnsRecordData
{
    public RawRecordData(byte[] data)
    {
        if (data.Length > ushort.MaxValue) throw new ArgumentException("RDATA too long", nameof(data));
        Data = data;
    }
    public byte[] Data { get; }
    public override bool IsValidFor(DnsType type) => !DnsRecord.IsInterpretedType(type) && type != DnsType.OPT;
    internal override void Write(ref DnsWireWriter w) => w.WriteBytes(Data);
    public override bool Equals(DnsRecordData? other) => other is RawRecordData o && o.Data.AsSpan().SequenceEqual(Data);
    public override int GetHashCode() => Data.Length;
    public override string ToString() => $"\\# {Data.Length} {Convert.ToHexString(Data)}";
}
