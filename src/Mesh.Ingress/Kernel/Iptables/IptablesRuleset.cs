namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>A Mesh-owned chain (name starts with <c>MESH-</c>) and its rules in iptables-save's canonical form.</summary>
public sealed record IptablesChain(string Table, string Name, IReadOnlyList<string> Rules);

/// <summary>A rule in someone else's (built-in) chain that jumps into a Mesh chain, e.g. <c>PREROUTING -m addrtype --dst-type LOCAL -j MESH-INGRESS</c>.</summary>
public sealed record IptablesJump(string Table, string Chain, string Rule);

/// <summary>Everything Mesh wants in one network namespace's iptables: its chains and the jumps into them.</summary>
public sealed record IptablesRuleset(IReadOnlyList<IptablesChain> Chains, IReadOnlyList<IptablesJump> Jumps)
{
    public const string OwnedPrefix = "MESH-";

    public static IptablesRuleset Empty { get; } = new([], []);

    public IEnumerable<string> Tables => Chains.Select(c => c.Table).Concat(Jumps.Select(j => j.Table)).Distinct(StringComparer.Ordinal);
}
