using System.Text;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// A rule as objects for the kernel (<see cref="Expressions"/>, after the anonymous sets it looks up) and as its nft text
/// (<see cref="Text"/>): the text is the rule's canonical description, hashed into its chain's content tag, and what
/// <c>nft -f</c> would be given for the same rule (the tests' independent writer).
/// </summary>
public sealed record NftRule(string Text, IReadOnlyList<Expression> Expressions, IReadOnlyList<NftAnonymousSet>? AnonymousSets = null);

/// <summary>An anonymous set or map of a rule (<c>__map%d</c>) with its elements: added with the rule, deleted with it.</summary>
public sealed record NftAnonymousSet(Set Set, IReadOnlyList<SetElement> Elements);

/// <summary>A chain Mesh manages: a base chain when <see cref="Base"/> is set (the skeleton's), else one per object.</summary>
public sealed record NftChain(string Name, IReadOnlyList<NftRule> Rules, BaseChain? Base = null);

/// <summary>
/// An element of a named map and its nft text (<c>tcp . 8080 : 0x00000100</c>). The text is what <c>nft -f</c> would be
/// given for the element (the tests' independent writer, logs); the daemon writes through netlink and never reads it,
/// so it is made from the element when asked by a renderer its map's builder shares between all its elements, not kept
/// per element (~100 B each, 70,000 at 10,000 services × 5 tasks).
/// A value held in its group's array, not an object of its own (70,000 of 32 B each at 10,000 services × 5 tasks);
/// two are equal when they hold the same element object with the same renderer, as the class's references were.
/// </summary>
/// <param name="render">Makes the element's text from it: a static method, one delegate for every element of a map.</param>
public readonly struct NftElement(SetElement element, Func<SetElement, string> render) : IEquatable<NftElement>
{
    public SetElement Element { get; } = element ?? throw new ArgumentNullException(nameof(element));

    private readonly Func<SetElement, string> _render = render ?? throw new ArgumentNullException(nameof(render));

    public string Text => _render(Element);

    /// <summary>The element with another key (a slotted map's slot moved, <see cref="NftMap.Slotted"/>): its text follows the key.</summary>
    internal NftElement WithKey(NftData key) => new(Element with { Key = key }, _render);

    /// <summary>Whether both lists hold the very same element objects in the same order (<see cref="ReferenceLists"/> for these values).</summary>
    internal static bool SameObjects(IReadOnlyList<NftElement> a, IReadOnlyList<NftElement> b)
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!a[i].Equals(b[i]))
            {
                return false;
            }
        }

        return true;
    }

    public bool Equals(NftElement other) => ReferenceEquals(Element, other.Element) && ReferenceEquals(_render, other._render);

    public override bool Equals(object? obj) => obj is NftElement other && Equals(other);

    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Element);

    public static bool operator ==(NftElement left, NftElement right) => left.Equals(right);

    public static bool operator !=(NftElement left, NftElement right) => !left.Equals(right);

    public override string ToString() => Text;
}

/// <summary>A named map: its declaration in nft syntax (part of the skeleton's description), the object, its elements.</summary>
public sealed record NftMap(string Declaration, Set Set, IReadOnlyList<NftElement> Elements)
{
    public string Name => Set.Name;

    /// <summary>
    /// The map's keys end in a slot (a host-order u32, 0..N-1 per key prefix) that numgen picks, so which value sits in
    /// which slot does not matter: the planner keeps the slots the kernel already holds (<see cref="NftPlanner.Stabilize"/>),
    /// and replacing one value rewrites that value's element only. Element texts read <c>prefix . slot : value</c>.
    /// </summary>
    public bool Slotted { get; init; }

    /// <summary>
    /// The elements by the object they belong to (a service's), when the map was built that way: the executor then
    /// plans a new table by the groups that changed instead of diffing every element (<see cref="NftTableMemory"/>).
    /// <see cref="Elements"/> is their concatenation. Null for a map built flat.
    /// </summary>
    public IReadOnlyList<NftElementGroup>? Groups { get; init; }

    /// <summary>A map whose elements are <paramref name="groups"/>' in order (keys unique across groups, a slotted prefix in one group).</summary>
    public static NftMap Grouped(string declaration, Set set, IReadOnlyList<NftElementGroup> groups)
    {
        ArgumentNullException.ThrowIfNull(groups);
        var elements = new NftElement[groups.Sum(g => g.Elements.Count)];
        var at = 0;
        foreach (var group in groups)
        {
            foreach (var element in group.Elements)
            {
                elements[at++] = element;
            }
        }

        return new NftMap(declaration, set, elements) { Groups = groups };
    }
}

/// <summary>
/// One object's elements of a map under a key unique in that map (the service's name). A builder that hands the same
/// group object again for an unchanged object spares the executor even comparing its elements.
/// </summary>
public sealed record NftElementGroup(string Key, IReadOnlyList<NftElement> Elements);

/// <summary>
/// A whole Mesh-owned nftables table as desired, a pure value: the skeleton (named maps and base chains with their
/// rules), the maps' elements, and per-object chains; any other chain in the table is deleted.
/// </summary>
public sealed record NftDesiredTable(
    Family Family,
    string Name,
    IReadOnlyList<NftMap> Maps,
    IReadOnlyList<NftChain> BaseChains,
    IReadOnlyList<NftChain> Chains)
{
    private string? _skeleton;

    /// <summary>
    /// The skeleton in nft's block syntax (maps declared, base chains with hooks and rules): its canonical
    /// description, hashed into the tag that decides whether the table must be rebuilt.
    /// </summary>
    public string Skeleton => _skeleton ??= Describe();

    private string Describe()
    {
        var text = new StringBuilder();
        foreach (var map in Maps)
        {
            text.Append("  ").Append(map.Declaration).Append('\n');
        }

        foreach (var chain in BaseChains)
        {
            var hook = chain.Base!;
            text.Append("  chain ").Append(chain.Name).Append(" {\n    type ").Append(hook.Type).Append(" hook ").Append(hook.Hook.ToString().ToLowerInvariant())
                .Append(" priority ").Append(Priority(hook.Priority)).Append("; policy ").Append(hook.Policy.ToString().ToLowerInvariant()).Append(";\n");
            foreach (var rule in chain.Rules)
            {
                text.Append("    ").Append(rule.Text).Append('\n');
            }

            text.Append("  }\n");
        }

        return text.ToString();
    }

    private static string Priority(int priority) => priority switch
    {
        BaseChain.PriorityMangle => "mangle",
        BaseChain.PriorityDstNat => "dstnat",
        BaseChain.PrioritySrcNat => "srcnat",
        BaseChain.PriorityFilter => "filter",
        _ => priority.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
