using System.Security.Cryptography;
using System.Text;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Desired table + kernel state → one nft script (one transaction), or null when nothing differs.
/// Every managed chain's rules carry a hash of that chain's content as their comment, and a small
/// <c>state</c> chain records the hashes of the skeleton and of the map contents, so the diff needs only
/// chain names and comments from the kernel — no re-parsing of nft's canonical rule syntax.
/// A changed skeleton rebuilds the table; otherwise only changed chains and maps are rewritten.
/// </summary>
public static class NftPlanner
{
    public const string StateChain = "state";

    public static string? Plan(NftDesiredTable desired, NftTableState actual)
    {
        var (skeletonTag, elementsTag) = Tags(desired);
        var table = $"{desired.Family} {desired.Name}";
        var script = new StringBuilder();

        var recorded = actual.Chains.GetValueOrDefault(StateChain) ?? [];
        if (!actual.Exists || recorded.Count != 2 || recorded[0] != skeletonTag)
        {
            script.Append($"table {table} {{}}\ndelete table {table}\n");
            script.Append($"table {table} {{\n{desired.Skeleton}\n}}\n");
            foreach (var chain in desired.Chains)
            {
                AppendChain(script, table, chain, create: true);
            }

            AppendMaps(script, table, desired, flush: false);
            AppendState(script, table, skeletonTag, elementsTag, flush: false);
            return script.ToString();
        }

        foreach (var chain in desired.Chains)
        {
            var have = actual.Chains.GetValueOrDefault(chain.Name);
            var tag = ChainTag(chain);
            if (have is null)
            {
                AppendChain(script, table, chain, create: true);
            }
            else if (have.Count != Math.Max(1, chain.Rules.Count) || have.Any(c => c != tag))
            {
                AppendChain(script, table, chain, create: false);
            }
        }

        if (recorded[1] != elementsTag)
        {
            AppendMaps(script, table, desired, flush: true);
            AppendState(script, table, skeletonTag, elementsTag, flush: true);
        }

        // Stale chains go last: map elements that jumped to them were replaced above, in the same transaction.
        foreach (var stale in actual.Chains.Keys
                     .Where(n => n.StartsWith(desired.ChainPrefix, StringComparison.Ordinal) && desired.Chains.All(c => c.Name != n))
                     .Order(StringComparer.Ordinal))
        {
            script.Append($"delete chain {table} {stale}\n");
        }

        return script.Length == 0 ? null : script.ToString();
    }

    /// <summary>What the kernel holds once a plan for <paramref name="desired"/> was applied (as far as planning can tell).</summary>
    public static NftTableState Expected(NftDesiredTable desired)
    {
        var (skeletonTag, elementsTag) = Tags(desired);
        var chains = desired.Chains.ToDictionary(
            c => c.Name,
            c => (IReadOnlyList<string>)Enumerable.Repeat(ChainTag(c), Math.Max(1, c.Rules.Count)).ToArray(),
            StringComparer.Ordinal);
        chains[StateChain] = [skeletonTag, elementsTag];
        return NftTableState.Of(chains);
    }

    private static (string Skeleton, string Elements) Tags(NftDesiredTable desired) => (
        "skeleton=" + Hash(desired.Skeleton),
        "elements=" + Hash(string.Join('\n', desired.Maps.Select(m => m.Map + ":" + string.Join(',', m.Elements)))));

    private static void AppendChain(StringBuilder script, string table, NftChain chain, bool create)
    {
        script.Append(create ? $"add chain {table} {chain.Name}\n" : $"flush chain {table} {chain.Name}\n");
        var tag = ChainTag(chain);
        // An empty chain still gets one rule so its tag is stored.
        foreach (var rule in chain.Rules.Count == 0 ? ["counter"] : chain.Rules)
        {
            script.Append($"add rule {table} {chain.Name} {rule} comment \"{tag}\"\n");
        }
    }

    private static void AppendMaps(StringBuilder script, string table, NftDesiredTable desired, bool flush)
    {
        foreach (var map in desired.Maps)
        {
            if (flush)
            {
                script.Append($"flush map {table} {map.Map}\n");
            }

            // Chunked so one line never gets unreasonably long at thousands of services.
            foreach (var chunk in map.Elements.Chunk(500))
            {
                script.Append($"add element {table} {map.Map} {{ {string.Join(", ", chunk)} }}\n");
            }
        }
    }

    private static void AppendState(StringBuilder script, string table, string skeletonTag, string elementsTag, bool flush)
    {
        script.Append(flush ? $"flush chain {table} {StateChain}\n" : $"add chain {table} {StateChain}\n");
        script.Append($"add rule {table} {StateChain} counter comment \"{skeletonTag}\"\n");
        script.Append($"add rule {table} {StateChain} counter comment \"{elementsTag}\"\n");
    }

    private static string ChainTag(NftChain chain) => "h=" + Hash(string.Join('\n', chain.Rules));

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 8));
}
