namespace Mesh.Discovery.Dns;

/// <summary>Resource record TYPE / QTYPE values (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891).</summary>
public enum DnsType : ushort
{
    A = 1,
    NS = 2,
    CNAME = 5,
    SOA = 6,
    PTR = 12,
    MX = 15,
    TXT = 16,
    AAAA = 28,
    SRV = 33,
    OPT = 41,
    IXFR = 251,
    AXFR = 252,
    MAILB = 253,
    MAILA = 254,
    ANY = 255,
}

/// <summary>CLASS / QCLASS values (RFC 1035 §3.2.4).</summary>
public enum DnsClass : ushort
{
    IN = 1,
    CH = 3,
    HS = 4,
    NONE = 254,
    ANY = 255,
}

/// <summary>Header OPCODE (RFC 1035 §4.1.1, RFC 1996, RFC 2136).</summary>
public enum DnsOpCode : byte
{
    Query = 0,
    IQuery = 1,
    Status = 2,
    Notify = 4,
    Update = 5,
}

/// <summary>RCODE values; values above 15 need EDNS (RFC 6891 §6.1.3).</summary>
public enum DnsResponseCode : ushort
{
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NXDomain = 3,
    NotImp = 4,
    Refused = 5,
    BadVers = 16,
}

/// <summary>How a query reached the server.</summary>
public enum DnsTransport : byte
{
    Udp,
    Tcp,
}
