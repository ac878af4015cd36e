namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>A chain Mesh manages inside its table (one per service); its rules are written without comments.</summary>
public sealed record NftChain(string Name, IReadOnlyList<string> Rules);

/// <summary>The elements of one map, each in nft syntax (<c>tcp . 8080 : 0x00000100</c>).</summary>
public sealed record NftMapElements(string Map, IReadOnlyList<string> Elements);

/// <summary>
/// A whole Mesh-owned nftables table as desired: a skeleton (maps and base chains with their rules, in
/// nft's block syntax), the map contents, and per-object chains whose names start with <see cref="ChainPrefix"/>.
/// </summary>
public sealed record NftDesiredTable(
    string Family,
    string Name,
    string Skeleton,
    IReadOnlyList<NftMapElements> Maps,
    IReadOnlyList<NftChain> Chains,
    string ChainPrefix);
