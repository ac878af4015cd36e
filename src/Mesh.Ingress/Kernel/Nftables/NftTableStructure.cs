using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// A Mesh table's structure as the kernel holds it, without the maps' elements: each chain with the comments of its
/// rules (what the planner compares chains by) and its named sets and maps as defined. At 10,000 services this is a few
/// chains and rules and three maps, where the elements are ~110,000: what a resync reads when only a rule, a chain or a
/// set's definition changed by someone else's hand (<see cref="NftChangeLog.Outcome.Structure"/>).
/// </summary>
public sealed record NftTableStructure(IReadOnlyDictionary<string, IReadOnlyList<string>> Chains, IReadOnlyDictionary<string, Set> Sets)
{
    /// <summary>Reads the table's chains, rules (comments) and named sets through <paramref name="handle"/>; null when there is no such table.</summary>
    public static NftTableStructure? Read(NfTablesHandle handle, Family family, string table)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (handle.GetTable(family, table) is null)
        {
            return null;
        }

        var chains = handle.GetChains(family, table).ToDictionary(c => c.Name, _ => new List<string>(), StringComparer.Ordinal);
        foreach (var rule in handle.GetRules(family, table))
        {
            if (!chains.TryGetValue(rule.Chain, out var comments))
            {
                chains[rule.Chain] = comments = [];
            }

            comments.Add(rule.Comment ?? "");
        }

        var sets = handle.GetSets(family, table).Where(s => (s.Flags & SetFlags.Anonymous) == 0).ToDictionary(s => s.Name, StringComparer.Ordinal);
        return new NftTableStructure(chains.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value, StringComparer.Ordinal), sets);
    }

    /// <summary>
    /// Whether the kernel holds <paramref name="map"/> as Mesh defines it (the kernel cannot change a set's type or flags
    /// in place, but a map deleted and added again by hand between two resyncs may come back another way).
    /// </summary>
    public bool Holds(Set map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return Sets.TryGetValue(map.Name, out var held) && held.Flags == map.Flags && held.KeyType == map.KeyType && held.DataType == map.DataType;
    }
}
