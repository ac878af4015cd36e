namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>enum nft_meta_keys (the ones Mesh uses and their neighbours).</summary>
public enum MetaKey : uint
{
    Length = 0,
    Protocol = 1,
    Priority = 2,
    Mark = 3,
    Iif = 4,
    Oif = 5,
    IifName = 6,
    OifName = 7,
    IifType = 8,
    OifType = 9,
    SkUid = 10,
    SkGid = 11,
    NfTrace = 12,
    NfProto = 15,
    L4Proto = 16,
}

/// <summary><c>meta KEY</c> loaded into a register.</summary>
public sealed record Meta(MetaKey Key, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "meta";

    public override string ToString() => $"[meta load {Key} => reg {DestRegister}]";
}

/// <summary><c>meta KEY set</c> from a register (e.g. <c>meta mark set ...</c>).</summary>
public sealed record MetaSet(MetaKey Key, uint SourceRegister = Registers.R1) : Expression
{
    public override string Name => "meta";

    public override string ToString() => $"[meta set {Key} with reg {SourceRegister}]";
}

/// <summary>enum nft_payload_bases.</summary>
public enum PayloadBase : uint
{
    LinkLayer = 0,
    Network = 1,
    Transport = 2,
}

/// <summary>Loads <see cref="Length"/> bytes at <see cref="Offset"/> of a header (network order), e.g. tcp dport = transport + 2, 2 bytes.</summary>
public sealed record Payload(PayloadBase Base, uint Offset, uint Length, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "payload";

    public override string ToString() => $"[payload load {Length}b @ {Base} + {Offset} => reg {DestRegister}]";
}

/// <summary>enum nft_ct_keys (the ones Mesh uses and their neighbours).</summary>
public enum CtKey : uint
{
    State = 0,
    Direction = 1,
    Status = 2,
    Mark = 3,
    Expiration = 5,
    L3Protocol = 7,
    Protocol = 10,
    ProtoSrc = 11,
    ProtoDst = 12,
}

/// <summary><c>ct KEY</c> loaded into a register (e.g. ct status, ct state: host-order bitmasks).</summary>
public sealed record Ct(CtKey Key, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "ct";

    public override string ToString() => $"[ct load {Key} => reg {DestRegister}]";
}

/// <summary>enum nft_fib_result.</summary>
public enum FibResult : uint
{
    Oif = 1,
    OifName = 2,
    AddressType = 3,
}

/// <summary>enum nft_fib_flags.</summary>
[Flags]
public enum FibFlags : uint
{
    None = 0,
    SourceAddress = 1,
    DestinationAddress = 2,
    Mark = 4,
    Iif = 8,
    Oif = 16,
    Present = 32,
}

/// <summary>A FIB lookup, e.g. <c>fib daddr type</c> (result: RTN_LOCAL = 2 for local addresses).</summary>
public sealed record Fib(FibResult Result, FibFlags Flags, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "fib";

    public override string ToString() => $"[fib {Flags} {Result} => reg {DestRegister}]";
}

/// <summary>enum nft_ng_types.</summary>
public enum NumgenType : uint
{
    Incremental = 0,
    Random = 1,
}

/// <summary><c>numgen inc|random mod N [offset O]</c>: a number in [O, O+N) into a register (round robin).</summary>
public sealed record Numgen(uint Modulus, NumgenType Type = NumgenType.Incremental, uint Offset = 0, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "numgen";

    public override string ToString() => $"[numgen reg {DestRegister} = {(Type == NumgenType.Incremental ? "inc" : "random")} mod {Modulus}{(Offset != 0 ? $" offset {Offset}" : "")}]";
}

/// <summary><c>jhash EXPR mod N seed S [offset O]</c> over <see cref="Length"/> bytes of the source register.</summary>
public sealed record JHash(uint SourceRegister, uint Length, uint Modulus, uint Seed, uint Offset = 0, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "hash";

    public override string ToString() => $"[hash reg {DestRegister} = jhash(reg {SourceRegister}, {Length}) % mod {Modulus} seed 0x{Seed:x}{(Offset != 0 ? $" offset {Offset}" : "")}]";
}

/// <summary>A constant into a data register.</summary>
public sealed record Immediate(NftData Data, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "immediate";

    public override string ToString() => $"[immediate reg {DestRegister} {Data}]";
}

/// <summary>A verdict (accept, drop, return, jump, goto) into the verdict register.</summary>
public sealed record VerdictExpression(Verdict Verdict) : Expression
{
    public override string Name => "immediate";

    public override string ToString() => $"[{Verdict}]";
}
