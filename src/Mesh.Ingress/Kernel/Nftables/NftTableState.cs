using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// What the kernel holds of a Mesh table, as far as planning needs it: each chain with the comments of its rules (Mesh
/// tags every rule with its chain's content hash) and each named map's elements by key.
/// </summary>
public sealed class NftTableState
{
    public bool Exists { get; private init; }

    /// <summary>Chain name → the comments on its rules, in order ("" for a rule without one).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Chains { get; private init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Named map → its elements by key.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<NftData, SetElement>> Maps { get; private init; } = new Dictionary<string, IReadOnlyDictionary<NftData, SetElement>>();

    public static NftTableState Missing { get; } = new();

    public static NftTableState Of(IReadOnlyDictionary<string, IReadOnlyList<string>> chains, IReadOnlyDictionary<string, IReadOnlyDictionary<NftData, SetElement>> maps) =>
        new() { Exists = true, Chains = chains, Maps = maps };

    /// <summary>Reads the table through <paramref name="handle"/>: chains, rule comments, named maps' elements.</summary>
    public static NftTableState Read(NfTablesHandle handle, Family family, string table)
    {
        if (NftTableStructure.Read(handle, family, table) is not { } structure)
        {
            return Missing;
        }

        var maps = new Dictionary<string, IReadOnlyDictionary<NftData, SetElement>>(StringComparer.Ordinal);
        foreach (var set in structure.Sets.Keys)
        {
            maps[set] = ByKey(handle.GetElements(family, table, set));
        }

        return Of(structure.Chains, maps);
    }

    public static IReadOnlyDictionary<NftData, SetElement> ByKey(IEnumerable<SetElement> elements)
    {
        var byKey = new Dictionary<NftData, SetElement>();
        foreach (var element in elements)
        {
            byKey[element.Key] = element;
        }

        return byKey;
    }
}
