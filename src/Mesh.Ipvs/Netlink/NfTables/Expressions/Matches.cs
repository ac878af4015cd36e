namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>enum nft_cmp_ops.</summary>
public enum CmpOp : uint
{
    Eq = 0,
    Neq = 1,
    Lt = 2,
    Lte = 3,
    Gt = 4,
    Gte = 5,
}

/// <summary>Compares a register with a constant; the rule stops here when it does not hold.</summary>
public sealed record Cmp(CmpOp Op, NftData Data, uint SourceRegister = Registers.R1) : Expression
{
    public override string Name => "cmp";

    public override string ToString() => $"[cmp {Op.ToString().ToLowerInvariant()} reg {SourceRegister} {Data}]";
}

/// <summary><c>dreg = (sreg &amp; mask) ^ xor</c> over <see cref="Length"/> bytes: masks and sets bits (NFT_BITWISE_BOOL).</summary>
public sealed record Bitwise(uint Length, NftData Mask, NftData Xor, uint SourceRegister = Registers.R1, uint DestRegister = Registers.R1) : Expression
{
    public override string Name => "bitwise";

    public override string ToString() => $"[bitwise reg {DestRegister} = (reg {SourceRegister} & {Mask}) ^ {Xor}]";
}

/// <summary>
/// Looks the source register up in a set: a match test (no destination), a map (data into
/// <see cref="DestRegister"/>), or a verdict map (destination <see cref="Registers.Verdict"/>).
/// In a batch that adds the set too, the set is also named by its transaction id (NFTA_LOOKUP_SET_ID).
/// </summary>
public sealed record Lookup(string Set, uint SourceRegister = Registers.R1, uint? DestRegister = null, bool Invert = false) : Expression
{
    public override string Name => "lookup";

    public override string ToString() => $"[lookup reg {SourceRegister} set {Set}{(DestRegister is { } d ? $" dreg {d}" : "")}{(Invert ? " 0x1" : "")}]";
}
