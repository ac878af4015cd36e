namespace Mesh.Ipvs.Netlink.NfTables;

/// <summary>The netfilter hooks of the ip/ip6/inet families (NF_INET_*).</summary>
public enum Hook : uint
{
    Prerouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// <summary>What a base chain does with a packet no rule decided on.</summary>
public enum ChainPolicy : uint
{
    Drop = 0,
    Accept = 1,
}

/// <summary>
/// The hook of a base chain: its type ("filter", "nat", "route"), the hook and the priority (nft's names: mangle -150,
/// dstnat -100, filter 0, srcnat 100).
/// </summary>
public sealed record BaseChain(string Type, Hook Hook, int Priority, ChainPolicy Policy = ChainPolicy.Accept)
{
    public const int PriorityMangle = -150;
    public const int PriorityDstNat = -100;
    public const int PriorityFilter = 0;
    public const int PrioritySrcNat = 100;
}

/// <summary>A chain: a base chain when <see cref="Base"/> is set, else a regular chain reached by jump/goto.</summary>
public sealed record Chain(Family Family, string Table, string Name, BaseChain? Base = null)
{
    public ulong Handle { get; init; }

    public override string ToString() => $"chain {Family.Name()} {Table} {Name}";
}
