namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>Verdict codes (NF_DROP, NF_ACCEPT and enum nft_verdicts).</summary>
public enum VerdictCode
{
    Drop = 0,
    Accept = 1,
    Continue = -1,
    Break = -2,
    Jump = -3,
    Goto = -4,
    Return = -5,
}

/// <summary>A verdict: accept, drop, return, or jump/goto a chain (in the same table).</summary>
public sealed record Verdict(VerdictCode Code, string? Chain = null)
{
    public static Verdict Accept { get; } = new(VerdictCode.Accept);
    public static Verdict Drop { get; } = new(VerdictCode.Drop);
    public static Verdict Return { get; } = new(VerdictCode.Return);
    public static Verdict Continue { get; } = new(VerdictCode.Continue);

    public static Verdict Jump(string chain) => new(VerdictCode.Jump, chain);

    public static Verdict Goto(string chain) => new(VerdictCode.Goto, chain);

    public override string ToString() => Code switch
    {
        VerdictCode.Jump => $"jump {Chain}",
        VerdictCode.Goto => $"goto {Chain}",
        _ => Code.ToString().ToLowerInvariant(),
    };
}
