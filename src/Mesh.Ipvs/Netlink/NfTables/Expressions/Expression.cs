namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// One expression of a rule (the kernel's nft_expr): loads into registers, compares, lookups, verdicts and actions.
/// Registers are the kernel's numbers: <see cref="Registers"/>. The models are google/nftables' expr package and
/// what <c>nft --debug=netlink</c> prints.
/// </summary>
public abstract record Expression
{
    /// <summary>The kernel's expression name (NFTA_EXPR_NAME).</summary>
    public abstract string Name { get; }

    /// <summary>Equal as a rule's content (a counter's running values aside).</summary>
    public virtual bool SameAs(Expression other) => Equals(other);
}

/// <summary>
/// The kernel's register numbers (enum nft_registers): 0 holds the verdict, 1-4 are the 16-byte registers and
/// 8-23 the 4-byte ones (8-11 alias register 1, 12-15 register 2...). A concatenation loads its parts into
/// consecutive 4-byte registers starting at the 16-byte one (nft: <c>reg 1</c>, then <c>reg 9</c>).
/// </summary>
public static class Registers
{
    public const uint Verdict = 0;
    public const uint R1 = 1;
    public const uint R2 = 2;
    public const uint R3 = 3;
    public const uint R4 = 4;

    /// <summary>The 4-byte register <paramref name="index"/> (0-15): NFT_REG32_00 + index.</summary>
    public static uint R32(int index) => index is >= 0 and <= 15 ? 8u + (uint)index : throw new ArgumentOutOfRangeException(nameof(index));
}

/// <summary>An expression this library does not model, kept as the kernel sent it so a read-back rule is complete.</summary>
public sealed record UnknownExpression(string ExpressionName, NftData Data) : Expression
{
    public override string Name => ExpressionName;

    public override string ToString() => $"[{ExpressionName} {Data}]";
}
