using System.Security.Cryptography;
using System.Text;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Desired table + kernel state → one nf_tables batch (one transaction), or null when nothing differs.
/// Every managed chain's rules (base chains' too) carry a hash of that chain's rules as their comment, and a small
/// <c>state</c> chain records the hash of the skeleton, so chains are compared by name and comments only: no decoding
/// of rules back into meaning. Named maps are compared element by element, so a change adds and deletes only the
/// elements that differ. A changed skeleton rebuilds the table; otherwise only changed chains and elements are written,
/// and chains Mesh does not want (its own stale ones and any added by hand: the table is Mesh's) are deleted.
/// </summary>
public static class NftPlanner
{
    public const string StateChain = "state";

    /// <summary>What every chain tag (a Mesh rule's comment) starts with.</summary>
    private const string ChainTagPrefix = "h=";

    public static NfTablesBatch? Plan(NftDesiredTable desired, NftTableState actual)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(actual);
        return PlanStable(Stabilize(desired, actual), actual);
    }

    /// <summary><see cref="Plan"/> for a desired table already <see cref="Stabilize">stabilized</see> against <paramref name="actual"/>.</summary>
    internal static NfTablesBatch? PlanStable(NftDesiredTable desired, NftTableState actual)
    {
        var skeletonTag = SkeletonTag(desired);
        var batch = new NfTablesBatch();
        if (NeedsRebuild(desired, actual, skeletonTag))
        {
            Rebuild(batch, desired, actual.Exists, skeletonTag);
            return batch;
        }

        PlanChains(batch, desired, actual);
        foreach (var map in desired.Maps)
        {
            var have = actual.Maps[map.Name];
            var want = NftTableState.ByKey(map.Elements.Select(e => e.Element));
            var delete = have.Values.Where(e => !want.TryGetValue(e.Key, out var w) || !Same(w, e)).ToList();
            var add = want.Values.Where(e => !have.TryGetValue(e.Key, out var h) || !Same(h, e)).ToList();
            WriteElements(batch, desired, map.Name, delete, add);
        }

        DeleteStaleChains(batch, desired, actual);
        return batch.Count == 0 ? null : batch;
    }

    /// <summary>Whether the table must be written whole: missing, another skeleton, or a map or base chain gone.</summary>
    internal static bool NeedsRebuild(NftDesiredTable desired, NftTableState actual, string skeletonTag)
    {
        var recorded = actual.Chains.GetValueOrDefault(StateChain);
        return !actual.Exists || recorded is not [var tag] || tag != skeletonTag
            || desired.Maps.Any(m => !actual.Maps.ContainsKey(m.Name)) || desired.BaseChains.Any(c => !actual.Chains.ContainsKey(c.Name));
    }

    /// <summary>Chains that are missing are added, chains whose tags differ flushed and refilled (a handful: no per-service chain).</summary>
    internal static void PlanChains(NfTablesBatch batch, NftDesiredTable desired, NftTableState actual)
    {
        foreach (var chain in desired.BaseChains.Concat(desired.Chains))
        {
            var have = actual.Chains.GetValueOrDefault(chain.Name);
            var chainTag = ChainTag(chain);
            if (have is null)
            {
                batch.AddChain(new Chain(desired.Family, desired.Name, chain.Name));
                AddRules(batch, desired, chain, chainTag);
            }
            else if (have.Count != Math.Max(1, chain.Rules.Count) || have.Any(c => c != chainTag))
            {
                batch.FlushChain(desired.Family, desired.Name, chain.Name);
                AddRules(batch, desired, chain, chainTag);
            }
        }
    }

    internal static void WriteElements(NfTablesBatch batch, NftDesiredTable desired, string map, IReadOnlyList<SetElement> delete, IReadOnlyList<SetElement> add)
    {
        if (delete.Count > 0)
        {
            batch.DeleteElements(desired.Family, desired.Name, map, delete.Select(e => new SetElement(e.Key)).ToList());
        }

        if (add.Count > 0)
        {
            batch.AddElements(desired.Family, desired.Name, map, add);
        }
    }

    /// <summary>
    /// Chains Mesh no longer wants (a picking chain no service uses) and chains someone else added to Mesh's table go
    /// last: the elements that jumped to them were deleted before, in the same transaction. Those holding a rule Mesh did
    /// not write (no chain tag) are flushed before any is deleted, so that a jump added by hand does not hold another
    /// (EBUSY); Mesh's own rules jump to no stale chain.
    /// </summary>
    internal static void DeleteStaleChains(NfTablesBatch batch, NftDesiredTable desired, NftTableState actual)
    {
        var stale = actual.Chains.Keys
            .Where(n => n != StateChain && desired.BaseChains.All(c => c.Name != n) && desired.Chains.All(c => c.Name != n))
            .Order(StringComparer.Ordinal)
            .ToList();
        foreach (var chain in stale.Where(n => actual.Chains[n].Any(c => !c.StartsWith(ChainTagPrefix, StringComparison.Ordinal))))
        {
            batch.FlushChain(desired.Family, desired.Name, chain);
        }

        foreach (var chain in stale)
        {
            batch.DeleteChain(desired.Family, desired.Name, chain);
        }
    }

    /// <summary>
    /// <paramref name="desired"/> with each <see cref="NftMap.Slotted"/> map's values kept in the slots the kernel holds
    /// them in: a value already in a slot below the new count stays there, the others fill the free slots in the desired
    /// order. So replacing one task rewrites its own element only, a task leaving moves at most one other into its slot,
    /// and a restarted daemon (which reads the kernel first) keeps the slots too. Plan applies it itself; the executor
    /// applies it to remember what the kernel holds afterwards.
    /// </summary>
    public static NftDesiredTable Stabilize(NftDesiredTable desired, NftTableState actual)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(actual);
        if (!actual.Exists || !desired.Maps.Any(m => m.Slotted && actual.Maps.ContainsKey(m.Name)))
        {
            return desired;
        }

        var maps = desired.Maps.Select(m => m.Slotted && actual.Maps.TryGetValue(m.Name, out var held) ? KeepSlots(m, held) : m).ToList();
        return maps.Zip(desired.Maps).All(p => ReferenceEquals(p.First, p.Second)) ? desired : desired with { Maps = maps };
    }

    private static NftMap KeepSlots(NftMap map, IReadOnlyDictionary<NftData, SetElement> held)
    {
        if (map.Groups is null)
        {
            var elements = KeepSlots(map.Name, map.Elements, held);
            return ReferenceEquals(elements, map.Elements) ? map : map with { Elements = elements };
        }

        var groups = map.Groups.Select(g => KeepSlots(map.Name, g, held)).ToList();
        return groups.Zip(map.Groups).All(p => ReferenceEquals(p.First, p.Second)) ? map : NftMap.Grouped(map.Declaration, map.Set, groups) with { Slotted = true };
    }

    /// <summary>One group's elements in the slots the kernel holds them in (the same group object when they already are).</summary>
    internal static NftElementGroup KeepSlots(string map, NftElementGroup group, IReadOnlyDictionary<NftData, SetElement> held)
    {
        var elements = KeepSlots(map, group.Elements, held);
        return ReferenceEquals(elements, group.Elements) ? group : group with { Elements = elements };
    }

    private static IReadOnlyList<NftElement> KeepSlots(string map, IReadOnlyList<NftElement> elements, IReadOnlyDictionary<NftData, SetElement> held)
    {
        // One pass over runs of elements with the same prefix (a port's slots, contiguous as the tables build them). A run
        // whose every element the kernel holds as it is (looked up by its whole key: no split, no allocation) stays as
        // it is, so an unchanged table costs one lookup per element; only runs that differ are reslotted.
        List<NftElement>? result = null;
        HashSet<NftData>? seen = null;
        var start = 0;
        while (start < elements.Count)
        {
            var end = start + 1;
            while (end < elements.Count && SamePrefix(elements[start].Element.Key, elements[end].Element.Key))
            {
                end++;
            }

            var inPlace = true;
            for (var i = start; i < end && inPlace; i++)
            {
                inPlace = held.TryGetValue(elements[i].Element.Key, out var h) && h.Data == elements[i].Element.Data;
            }

            if (elements[start].Element.Key.Length > 4 && !(seen ??= []).Add(SplitSlot(elements[start].Element.Key).Prefix))
            {
                throw new InvalidOperationException($"map {map}: the slots of one prefix are not contiguous, which a slotted map needs");
            }

            if (inPlace || elements[start].Element.Key.Length <= 4)
            {
                result?.AddRange(elements.Skip(start).Take(end - start));
            }
            else
            {
                result ??= [.. elements.Take(start)];
                result.AddRange(Reslotted(elements, start, end, held));
            }

            start = end;
        }

        // A run the kernel does not hold yet (a new service, a cold start) is often placed exactly as desired: then the
        // desired list itself is what is written, so the executor's memory does not keep a second list of the same
        // elements beside the desired one (10,000 of them on a cold start at 10,000 services).
        return result is null || NftElement.SameObjects(result, elements) ? elements : result.ToArray();
    }


    /// <summary>One prefix's elements [start, end) placed in slots 0..N-1: where the kernel holds each value if that slot is below N, else the free slots in order.</summary>
    private static IEnumerable<NftElement> Reslotted(IReadOnlyList<NftElement> elements, int start, int end, IReadOnlyDictionary<NftData, SetElement> held)
    {
        var prefix = SplitSlot(elements[start].Element.Key).Prefix;
        var placed = new NftElement?[end - start];
        var pending = new List<NftElement>(elements.Skip(start).Take(end - start));
        for (var s = 0; s < placed.Length; s++)
        {
            if (held.TryGetValue(NftData.Concat(prefix, NftData.U32((uint)s)), out var h) && h.Data is { } data
                && pending.FindIndex(e => e.Element.Data == data) is var at and >= 0)
            {
                placed[s] = pending[at];
                pending.RemoveAt(at);
            }
        }

        var next = 0;
        for (var s = 0; s < placed.Length; s++)
        {
            var item = placed[s] ?? pending[next++];
            yield return SplitSlot(item.Element.Key).Slot == (uint)s ? item : Reslot(item, prefix, (uint)s);
        }
    }

    private static bool SamePrefix(NftData a, NftData b) =>
        a.Length == b.Length && a.Length > 4 && a.Span[..^4].SequenceEqual(b.Span[..^4]);

    private static (NftData Prefix, uint Slot) SplitSlot(NftData key) =>
        (new NftData(key.Span[..^4]), System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(key.Span[^4..]));

    /// <summary>The element moved to <paramref name="slot"/>, its text (<c>prefix . slot : value</c>) with it.</summary>
    private static NftElement Reslot(NftElement element, NftData prefix, uint slot) => element.WithKey(NftData.Concat(prefix, NftData.U32(slot)));

    /// <summary>What the kernel holds once a plan for <paramref name="desired"/> was committed.</summary>
    public static NftTableState Expected(NftDesiredTable desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return NftTableState.Of(ExpectedChains(desired), desired.Maps.ToDictionary(m => m.Name, m => NftTableState.ByKey(m.Elements.Select(e => e.Element)), StringComparer.Ordinal));
    }

    /// <summary>The chains (with their rules' tags, the state chain's skeleton tag) the kernel holds once <paramref name="desired"/> was committed.</summary>
    internal static Dictionary<string, IReadOnlyList<string>> ExpectedChains(NftDesiredTable desired)
    {
        var chains = desired.BaseChains.Concat(desired.Chains).ToDictionary(
            c => c.Name,
            c => (IReadOnlyList<string>)Enumerable.Repeat(ChainTag(c), Math.Max(1, c.Rules.Count)).ToArray(),
            StringComparer.Ordinal);
        chains[StateChain] = [SkeletonTag(desired)];
        return chains;
    }

    /// <summary>The batch that deletes the table.</summary>
    public static NfTablesBatch Delete(Family family, string table) => new NfTablesBatch().DeleteTable(family, table);

    private static void Rebuild(NfTablesBatch batch, NftDesiredTable desired, bool exists, string skeletonTag)
    {
        if (exists)
        {
            batch.DeleteTable(desired.Family, desired.Name);
        }

        batch.AddTable(new Table(desired.Family, desired.Name));
        foreach (var map in desired.Maps)
        {
            batch.AddSet(map.Set);
        }

        foreach (var chain in desired.BaseChains.Concat(desired.Chains))
        {
            batch.AddChain(new Chain(desired.Family, desired.Name, chain.Name, chain.Base));
        }

        foreach (var chain in desired.BaseChains.Concat(desired.Chains))
        {
            AddRules(batch, desired, chain, ChainTag(chain));
        }

        foreach (var map in desired.Maps.Where(m => m.Elements.Count > 0))
        {
            batch.AddElements(desired.Family, desired.Name, map.Name, map.Elements.Select(e => e.Element).ToList());
        }

        batch.AddChain(new Chain(desired.Family, desired.Name, StateChain));
        batch.AddRule(new Rule(desired.Family, desired.Name, StateChain, [new Counter()], skeletonTag));
    }

    private static void AddRules(NfTablesBatch batch, NftDesiredTable desired, NftChain chain, string tag)
    {
        // An empty chain still gets one rule so its tag is stored.
        if (chain.Rules.Count == 0)
        {
            batch.AddRule(new Rule(desired.Family, desired.Name, chain.Name, [new Counter()], tag));
            return;
        }

        foreach (var rule in chain.Rules)
        {
            foreach (var set in rule.AnonymousSets ?? [])
            {
                batch.AddSet(set.Set);
                batch.AddElements(desired.Family, desired.Name, set.Set.Name, set.Elements);
            }

            batch.AddRule(new Rule(desired.Family, desired.Name, chain.Name, rule.Expressions, tag));
        }
    }

    internal static bool Same(SetElement a, SetElement b) => a.Key == b.Key && a.Data == b.Data && a.Verdict == b.Verdict;

    public static string SkeletonTag(NftDesiredTable desired) => "skeleton=" + Hash(desired.Skeleton);

    public static string ChainTag(NftChain chain) => ChainTagPrefix + Hash(string.Join('\n', chain.Rules.Select(r => r.Text)));

    private static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)).AsSpan(0, 8));
}
