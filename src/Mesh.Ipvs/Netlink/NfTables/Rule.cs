namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>
/// A rule: its expressions in order, and the comment nft keeps in the rule's userdata. <see cref="Handle"/> is the
/// kernel's (dumps; deletes by handle).
/// </summary>
public sealed record Rule(Family Family, string Table, string Chain, IReadOnlyList<Expression> Expressions, string? Comment = null)
{
    public ulong Handle { get; init; }

    /// <summary>The userdata when it is not a comment nft would write (kept so a read-back rule is complete).</summary>
    public NftData? UserData { get; init; }

    /// <summary>Same table, chain, expressions and comment (handles and counters' values aside).</summary>
    public bool SameAs(Rule other) =>
        other is not null && Family == other.Family && Table == other.Table && Chain == other.Chain && Comment == other.Comment &&
        Expressions.Count == other.Expressions.Count && Expressions.Zip(other.Expressions).All(p => p.First.SameAs(p.Second));

    public override string ToString()
    {
        var text = $"rule {Family.Name()} {Table} {Chain}: {string.Join(' ', Expressions)}{(Comment is null ? "" : $" comment \"{Comment}\"")}";
        return text.Length <= 240 ? text : text[..237] + "...";
    }
}
