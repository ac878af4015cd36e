using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// What the executor knows a Mesh table holds, kept between passes so that a new desired table is planned by what
/// changed instead of re-planning and diffing every element (110,000 at 10,000 services): the kernel's view (chain tags,
/// every map's elements by key) and, for each map built in groups (<see cref="NftMap.Groups"/>: a service's elements),
/// each group as it was desired and as it was written (slots kept). A group given again as the same object or with the
/// same elements is skipped; only new, changed and removed groups are stabilized and diffed against the kernel view,
/// which gives the same element changes as the whole-table diff (the property test's claim). The chains are few and
/// planned whole. It is a view of one exact kernel state: <see cref="Plan"/> does not change it, <see cref="Apply"/>
/// after the commit succeeded does; the executor drops it after any failure or a read. Elements others added or deleted
/// in its maps (the executor learns them from the kernel's notifications) are taken into the kernel view
/// (<see cref="TakeForeign"/>) and repaired by the next plan, whatever else it changes; so is the table's structure as
/// read back after someone changed a rule, a chain or a set (<see cref="TakeStructure"/>).
/// </summary>
public sealed class NftTableMemory
{
    private readonly Dictionary<string, Dictionary<NftData, SetElement>> _maps;
    private readonly Dictionary<string, GroupsOfMap> _groups;

    /// <summary>Map → the keys others added, changed or deleted since (<see cref="TakeForeign"/>): the next plan puts them back.</summary>
    private readonly Dictionary<string, HashSet<NftData>> _drift = new(StringComparer.Ordinal);

    /// <summary>Maps the kernel no longer holds as Mesh defines them (<see cref="TakeStructure"/>): the view lacks them, so the next plan rebuilds.</summary>
    private readonly HashSet<string> _lost = new(StringComparer.Ordinal);

    /// <summary>The chains were read back since the last plan was applied (<see cref="TakeStructure"/>): the next plan compares them.</summary>
    private bool _chainsRead;
    private Dictionary<string, IReadOnlyList<string>> _chains;
    private NftDesiredTable _raw;
    private string _skeletonTag;

    private NftTableMemory(NftDesiredTable raw, Dictionary<string, IReadOnlyList<string>> chains, Dictionary<string, Dictionary<NftData, SetElement>> maps, Dictionary<string, GroupsOfMap> groups)
    {
        _raw = raw;
        _chains = chains;
        _maps = maps;
        _groups = groups;
        _skeletonTag = NftPlanner.SkeletonTag(raw);
        State = View();
    }

    /// <summary>The kernel's table as known (a live view: it follows <see cref="Apply"/>).</summary>
    public NftTableState State { get; private set; }

    /// <summary>
    /// The memory of a table that holds <paramref name="stable"/> (<paramref name="raw"/> stabilized, then committed or
    /// found equal): what the whole-table path leaves behind.
    /// </summary>
    public static NftTableMemory Of(NftDesiredTable raw, NftDesiredTable stable)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ArgumentNullException.ThrowIfNull(stable);
        var maps = new Dictionary<string, Dictionary<NftData, SetElement>>(StringComparer.Ordinal);
        var groups = new Dictionary<string, GroupsOfMap>(StringComparer.Ordinal);
        foreach (var (want, written) in raw.Maps.Zip(stable.Maps))
        {
            var elements = new Dictionary<NftData, SetElement>(written.Elements.Count);
            foreach (var element in written.Elements)
            {
                elements[element.Element.Key] = element.Element;
            }

            maps[written.Name] = elements;
            if (want.Groups is { } rawGroups && written.Groups is { } writtenGroups && rawGroups.Count == writtenGroups.Count)
            {
                var byKey = new Dictionary<string, (NftElementGroup Raw, NftElementGroup Written)>(rawGroups.Count, StringComparer.Ordinal);
                foreach (var (r, w) in rawGroups.Zip(writtenGroups))
                {
                    byKey[r.Key] = (r, w);
                }

                groups[written.Name] = new GroupsOfMap(rawGroups, byKey);
            }
        }

        return new NftTableMemory(raw, NftPlanner.ExpectedChains(stable), maps, groups);
    }

    /// <summary>
    /// The change from what is known to <paramref name="desired"/>, planned by the groups that changed; null when it
    /// cannot be planned that way (another skeleton, a map not built in groups, other maps): then the whole-table
    /// planner runs against <see cref="State"/>.
    /// </summary>
    public Change? Plan(NftDesiredTable desired)
    {
        ArgumentNullException.ThrowIfNull(desired);
        if (ReferenceEquals(desired, _raw) && _drift.Count == 0 && !_chainsRead)
        {
            return new Change(null, desired, []); // the same value again (a resync with nothing new): nothing to plan
        }

        if (desired.Family != _raw.Family || desired.Name != _raw.Name || desired.Maps.Count != _maps.Count
            || desired.Maps.Any(m => m.Groups is null || !_groups.ContainsKey(m.Name)))
        {
            return null;
        }

        var skeletonTag = NftPlanner.SkeletonTag(desired);
        if (skeletonTag != _skeletonTag || NftPlanner.NeedsRebuild(desired, State, skeletonTag))
        {
            return null;
        }

        var batch = new NfTablesBatch();
        NftPlanner.PlanChains(batch, desired, State);
        var changes = new List<MapChange>(desired.Maps.Count);
        foreach (var map in desired.Maps)
        {
            var change = Diff(map, _maps[map.Name], _groups[map.Name], _drift.GetValueOrDefault(map.Name));
            NftPlanner.WriteElements(batch, desired, map.Name, change.Delete, change.Add);
            changes.Add(change);
        }

        NftPlanner.DeleteStaleChains(batch, desired, State);
        return new Change(batch.Count == 0 ? null : batch, desired, changes);
    }

    /// <summary>One map's changed, new and removed groups: their elements to delete and add, and the groups' new memory.</summary>
    private static MapChange Diff(NftMap map, Dictionary<NftData, SetElement> held, GroupsOfMap known, HashSet<NftData>? drift)
    {
        var groups = map.Groups!;
        var delete = new Dictionary<NftData, SetElement>();
        var add = new Dictionary<NftData, SetElement>();
        var updates = new List<(string Key, NftElementGroup Raw, NftElementGroup Written)>();

        // In step with the previous list first: an unchanged table's groups are the same objects at the same places.
        var sameKeysInOrder = groups.Count == known.Order.Count;
        for (var i = 0; i < groups.Count; i++)
        {
            var group = groups[i];
            if (sameKeysInOrder && ReferenceEquals(group, known.Order[i]))
            {
                continue;
            }

            sameKeysInOrder &= i < known.Order.Count && known.Order[i].Key == group.Key;
            var found = known.ByKey.TryGetValue(group.Key, out var before);
            if (found && ReferenceEquals(before.Raw, group))
            {
                continue;
            }

            if (found && SameElements(before.Raw, group))
            {
                updates.Add((group.Key, group, before.Written)); // the same elements as another object: remember this one
                continue;
            }

            var written = map.Slotted ? NftPlanner.KeepSlots(map.Name, group, held) : group;
            updates.Add((group.Key, group, written));
            if (before.Written is { } old)
            {
                foreach (var element in old.Elements)
                {
                    delete[element.Element.Key] = element.Element;
                }
            }

            foreach (var element in written.Elements)
            {
                add[element.Element.Key] = element.Element;
            }
        }

        List<string>? removed = null;
        if (!sameKeysInOrder)
        {
            var keys = new HashSet<string>(groups.Select(g => g.Key), StringComparer.Ordinal);
            removed = known.ByKey.Keys.Where(k => !keys.Contains(k)).ToList();
            foreach (var key in removed)
            {
                foreach (var element in known.ByKey[key].Written.Elements)
                {
                    delete[element.Element.Key] = element.Element;
                }
            }
        }

        // A key deleted and added with the same element (a group rewritten around an unchanged element, or an element
        // moving between groups) is no change: what stays is exactly the whole-table diff.
        foreach (var (key, element) in add.ToList())
        {
            if (delete.TryGetValue(key, out var old) && NftPlanner.Same(old, element))
            {
                delete.Remove(key);
                add.Remove(key);
            }
        }

        if (drift is not null)
        {
            Repair(groups, known, updates, held, drift, delete, add);
        }

        return new MapChange(map.Name, [.. delete.Values], [.. add.Values], groups, updates, removed ?? []);
    }

    /// <summary>
    /// Keys others changed: the diff above assumed the kernel holds what Mesh wrote, so for those keys it is replaced by
    /// what turns the element the kernel holds (<paramref name="held"/>) into the one the groups write after this change.
    /// </summary>
    private static void Repair(
        IReadOnlyList<NftElementGroup> groups,
        GroupsOfMap known,
        List<(string Key, NftElementGroup Raw, NftElementGroup Written)> updates,
        Dictionary<NftData, SetElement> held,
        HashSet<NftData> drift,
        Dictionary<NftData, SetElement> delete,
        Dictionary<NftData, SetElement> add)
    {
        var updated = updates.ToDictionary(u => u.Key, u => u.Written, StringComparer.Ordinal);
        var wanted = new Dictionary<NftData, SetElement>(drift.Count);
        foreach (var group in groups)
        {
            var written = updated.TryGetValue(group.Key, out var w) ? w : known.ByKey[group.Key].Written;
            foreach (var element in written.Elements)
            {
                if (drift.Contains(element.Element.Key))
                {
                    wanted[element.Element.Key] = element.Element;
                }
            }
        }

        foreach (var key in drift)
        {
            delete.Remove(key);
            add.Remove(key);
            var has = held.GetValueOrDefault(key);
            var want = wanted.GetValueOrDefault(key);
            if (has is not null && (want is null || !NftPlanner.Same(has, want)))
            {
                delete[key] = has;
            }

            if (want is not null && (has is null || !NftPlanner.Same(has, want)))
            {
                add[key] = want;
            }
        }
    }

    /// <summary>Whether <paramref name="map"/> is one of the maps this memory plans by groups (the ones <see cref="TakeForeign"/> takes).</summary>
    public bool Knows(string map) => _maps.ContainsKey(map) && _groups.ContainsKey(map);

    /// <summary>
    /// Takes in an element someone else added to or deleted from <paramref name="map"/> (a committed transaction the
    /// kernel announced): the kernel view follows it, and the next <see cref="Plan"/> repairs the key.
    /// </summary>
    public void TakeForeign(string map, SetElement element, bool deleted)
    {
        ArgumentNullException.ThrowIfNull(element);
        if (!Knows(map))
        {
            throw new ArgumentException($"map {map} is not planned by this memory", nameof(map));
        }

        if (deleted)
        {
            _maps[map].Remove(element.Key);
        }
        else
        {
            _maps[map][element.Key] = element;
        }

        if (!_drift.TryGetValue(map, out var keys))
        {
            _drift[map] = keys = [];
        }

        keys.Add(element.Key);
    }

    /// <summary>
    /// Takes in the table's chains and sets as read back (someone changed a rule, a chain or a set; the elements are
    /// still known): the kernel view holds the chains read, and loses a map the kernel no longer holds as written, so the
    /// next <see cref="Plan"/> repairs the chains, deletes chains Mesh did not write, or rebuilds the table.
    /// </summary>
    public void TakeStructure(NftTableStructure structure)
    {
        ArgumentNullException.ThrowIfNull(structure);
        _chains = new Dictionary<string, IReadOnlyList<string>>(structure.Chains, StringComparer.Ordinal);
        foreach (var map in _raw.Maps.Where(m => !structure.Holds(m.Set)))
        {
            _lost.Add(map.Name);
        }

        _chainsRead = true;
        State = View();
    }

    private static bool SameElements(NftElementGroup a, NftElementGroup b)
    {
        if (a.Elements.Count != b.Elements.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Elements.Count; i++)
        {
            if (!NftPlanner.Same(a.Elements[i].Element, b.Elements[i].Element))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Takes <paramref name="change"/> in, once its batch was committed (or it had none).</summary>
    public void Apply(Change change)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (ReferenceEquals(change.Desired, _raw) && change.Maps.Count == 0)
        {
            return;
        }

        foreach (var map in change.Maps)
        {
            var held = _maps[map.Map];
            foreach (var element in map.Delete)
            {
                held.Remove(element.Key);
            }

            foreach (var element in map.Add)
            {
                held[element.Key] = element;
            }

            var known = _groups[map.Map];
            foreach (var key in map.Removed)
            {
                known.ByKey.Remove(key);
            }

            foreach (var (key, raw, written) in map.Groups)
            {
                known.ByKey[key] = (raw, written);
            }

            _groups[map.Map] = known with { Order = map.Order };
        }

        _drift.Clear(); // the change repaired every key others changed, and the chains read back
        _chainsRead = false;
        _chains = NftPlanner.ExpectedChains(change.Desired);
        _skeletonTag = NftPlanner.SkeletonTag(change.Desired);
        _raw = change.Desired;
        State = View();
    }

    private NftTableState View() =>
        NftTableState.Of(_chains, _maps.Where(kv => !_lost.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<NftData, SetElement>)kv.Value, StringComparer.Ordinal));

    /// <summary>A planned change: the batch (null when nothing differs) and what the memory takes in once it is committed.</summary>
    public sealed record Change(NfTablesBatch? Batch, NftDesiredTable Desired, IReadOnlyList<MapChange> Maps);

    /// <summary>One map's element changes (as the whole-table diff would make them) and its groups' new memory.</summary>
    public sealed record MapChange(
        string Map,
        IReadOnlyList<SetElement> Delete,
        IReadOnlyList<SetElement> Add,
        IReadOnlyList<NftElementGroup> Order,
        IReadOnlyList<(string Key, NftElementGroup Raw, NftElementGroup Written)> Groups,
        IReadOnlyList<string> Removed);

    /// <summary>A map's groups as last desired (in order) and, by key, as desired and as written.</summary>
    private sealed record GroupsOfMap(IReadOnlyList<NftElementGroup> Order, Dictionary<string, (NftElementGroup Raw, NftElementGroup Written)> ByKey);
}
