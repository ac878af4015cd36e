namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>enum nft_nat_types.</summary>
public enum NatType : uint
{
    Snat = 0,
    Dnat = 1,
}

/// <summary>
/// snat/dnat to the address (and port) held in registers: <c>dnat ip addr . port to numgen ... map</c> puts the address
/// in reg 1 and the port in reg 9 (the concatenation's second part).
/// </summary>
public sealed record Nat(NatType Type, Family Family, uint? AddressMin = Registers.R1, uint? AddressMax = null, uint? ProtoMin = null, uint? ProtoMax = null, uint Flags = 0) : Expression
{
    public override string Name => "nat";

    public override string ToString() =>
        $"[nat {Type.ToString().ToLowerInvariant()} {Family.Name()}{(AddressMin is { } a ? $" addr_min reg {a}" : "")}{(AddressMax is { } am ? $" addr_max reg {am}" : "")}" +
        $"{(ProtoMin is { } p ? $" proto_min reg {p}" : "")}{(ProtoMax is { } pm ? $" proto_max reg {pm}" : "")}{(Flags != 0 ? $" flags 0x{Flags:x}" : "")}]";
}

/// <summary>masquerade (optionally to a port range held in registers).</summary>
public sealed record Masquerade(uint Flags = 0, uint? ProtoMin = null, uint? ProtoMax = null) : Expression
{
    public override string Name => "masq";

    public override string ToString() => "[masq]";
}

/// <summary>A counter. Its values are what the kernel counted (dumps); a new rule's counter starts at what is given.</summary>
public sealed record Counter(ulong Packets = 0, ulong Bytes = 0) : Expression
{
    public override string Name => "counter";

    public override bool SameAs(Expression other) => other is Counter;

    public override string ToString() => "[counter]";
}
