using System.Net;
using System.Net.Sockets;

namespace Mesh.Discovery.Dns;

/// <summary>A question entry (RFC 1035 §4.1.2).</summary>
public sealed class DnsQuestion : IEquatable<DnsQuestion>
{
    public DnsQuestion(DnsName name, DnsType type, DnsClass @class = DnsClass.IN)
    {
        Name = name; Type = type; Class = @class;
    }
    public DnsName Name { get; }
    public DnsType Type { get; }
    public DnsClass Class { get; }

    public bool Equals(DnsQuestion? other) => other is not null && other.Type == Type && other.Class == Class && other.Name.Equals(Name);
    public override bool Equals(object? obj) => obj is DnsQuestion q && Equals(q);
    public override int GetHashCode() => HashCode.Combine(Name, Type, Class);
    public override string ToString() => $"{Name}. {Class} {Type}";
}

/// <summary>A resource record (RFC 1035 §4.1.3). OPT is not a DnsRecord: see <see cref="DnsEdns"/>.</summary>
public sealed class DnsRecord : IEquatable<DnsRecord>
{
    public DnsRecord(DnsName name, DnsType type, DnsClass @class, uint ttl, DnsRecordData data)
    {
        if (type == DnsType.OPT) throw new ArgumentException("OPT is carried by DnsMessage.Edns, not as a record", nameof(type));
        if (!data.IsValidFor(type)) throw new ArgumentException($"{data.GetType().Name} cannot be the RDATA of a {type} record", nameof(data));
        Name = name; Type = type; Class = @class; Ttl = ttl; Data = data;
    }

    public DnsName Name { get; }
    public DnsType Type { get; }
    public DnsClass Class { get; }
    /// <summary>TTL in seconds (RFC 2181 §8: values above 2^31-1 are read as 0 by resolvers; kept verbatim here).</summary>
    public uint Ttl { get; }
    public DnsRecordData Data { get; }

    public static DnsRecord A(DnsName name, uint ttl, IPAddress address) => new(name, DnsType.A, DnsClass.IN, ttl, new ARecordData(address));
    public static DnsRecord Aaaa(DnsName name, uint ttl, IPAddress address) => new(name, DnsType.AAAA, DnsClass.IN, ttl, new AaaaRecordData(address));

    /// <summary>An A or AAAA record depending on the address family.</summary>
    public static DnsRecord Address(DnsName name, uint ttl, IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 ? Aaaa(name, ttl, address) : A(name, ttl, address);

    public static DnsRecord Ptr(DnsName name, uint ttl, DnsName target) => new(name, DnsType.PTR, DnsClass.IN, ttl, new NameRecordData(target));
    public static DnsRecord Cname(DnsName name, uint ttl, DnsName target) => new(name, DnsType.CNAME, DnsClass.IN, ttl, new NameRecordData(target));
    public static DnsRecord Ns(DnsName name, uint ttl, DnsName target) => new(name, DnsType.NS, DnsClass.IN, ttl, new NameRecordData(target));
    public static DnsRecord Srv(DnsName name, uint ttl, ushort priority, ushort weight, ushort port, DnsName target) =>
        new(name, DnsType.SRV, DnsClass.IN, ttl, new SrvRecordData(priority, weight, port, target));
    public static DnsRecord Txt(DnsName name, uint ttl, params string[] strings) => new(name, DnsType.TXT, DnsClass.IN, ttl, new TxtRecordData(strings));

    /// <summary>Types whose RDATA the codec parses into a typed object (the rest are <see cref="RawRecordData"/>).</summary>
    public static bool IsInterpretedType(DnsType type) => type is DnsType.A or DnsType.AAAA or DnsType.NS or DnsType.CNAME
        or DnsType.PTR or DnsType.SOA or DnsType.MX or DnsType.TXT or DnsType.SRV;

    public bool Equals(DnsRecord? other) => other is not null && other.Type == Type && other.Class == Class && other.Ttl == Ttl
        && other.Name.Equals(Name) && other.Data.Equals(Data);
    public override bool Equals(object? obj) => obj is DnsRecord r && Equals(r);
    public override int GetHashCode() => HashCode.Combine(Name, Type, Class, Ttl, Data);
    public override string ToString() => $"{Name}. {Ttl} {Class} {Type} {Data}";
}

/// <summary>An EDNS(0) option (RFC 6891 §6.1.2), e.g. a COOKIE (10).</summary>
public sealed class DnsEdnsOption : IEquatable<DnsEdnsOption>
{
    public DnsEdnsOption(ushort code, byte[] data)
    {
        if (data.Length > ushort.MaxValue) throw new ArgumentException("option too long", nameof(data));
        Code = code; Data = data;
    }
    public ushort Code { get; }
    public byte[] Data { get; }
    public bool Equals(DnsEdnsOption? other) => other is not null && other.Code == Code && other.Data.AsSpan().SequenceEqual(Data);
    public override bool Equals(object? obj) => obj is DnsEdnsOption o && Equals(o);
    public override int GetHashCode() => HashCode.Combine(Code, Data.Length);
}

/// <summary>The OPT pseudo-record of a message (RFC 6891 §6.1).</summary>
public sealed class DnsEdns : IEquatable<DnsEdns>
{
    public const ushort DnssecOkFlag = 0x8000;

    /// <summary>Requestor's / responder's UDP payload size (the OPT CLASS field).</summary>
    public ushort UdpPayloadSize { get; init; } = 1232;
    /// <summary>Upper 8 bits of the 12-bit RCODE.</summary>
    public byte ExtendedRcode { get; init; }
    public byte Version { get; init; }
    /// <summary>The 16 flag bits (DO = 0x8000).</summary>
    public ushort Flags { get; init; }
    public bool DnssecOk => (Flags & DnssecOkFlag) != 0;
    public IReadOnlyList<DnsEdnsOption> Options { get; init; } = [];

    /// <summary>Wire size of the OPT record: root name (1) + type, class, ttl, rdlength (10) + options.</summary>
    public int WireLength
    {
        get
        {
            int n = 11;
            foreach (var o in Options) n += 4 + o.Data.Length;
            return n;
        }
    }

    public bool Equals(DnsEdns? other) => other is not null && other.UdpPayloadSize == UdpPayloadSize && other.ExtendedRcode == ExtendedRcode
        && other.Version == Version && other.Flags == Flags && other.Options.SequenceEqual(Options);
    public override bool Equals(object? obj) => obj is DnsEdns e && Equals(e);
    public override int GetHashCode() => HashCode.Combine(UdpPayloadSize, ExtendedRcode, Version, Flags, Options.Count);
}
