using System.Runtime.InteropServices;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// What differs between two lists of immutable objects, by reference: the objects of <c>before</c> not matched in
/// <c>after</c> (<see cref="Removed"/>) and the other way round (<see cref="Added"/>). The two lists are walked in step;
/// where they part, the nearest object they share again (within <see cref="Reach"/> of both positions) realigns them.
/// Every object outside the two lists is the very same object in both, matched in order, so whatever is not named in
/// them is the same in both lists (how the realigning guesses only decides how much is named). The stores keep the
/// objects a change did not touch and their order (a replaced task in its place, a new one at the end or in order,
/// a removed one gone), so one change costs a walk of reference comparisons and a few objects here.
/// </summary>
internal sealed record ReferenceDelta<T>(IReadOnlyList<T> Removed, IReadOnlyList<T> Added) where T : class
{
    /// <summary>How far ahead in each list a realignment is looked for (a run of that many objects changed in a row).</summary>
    internal const int Reach = 16;

    private static readonly ReferenceDelta<T> None = new([], []);

    /// <summary>The difference, or null when the lists part for longer than <see cref="Reach"/> or differ by more than <paramref name="limit"/> objects: unknown.</summary>
    public static ReferenceDelta<T>? Of(IReadOnlyList<T> before, IReadOnlyList<T> after, int limit)
    {
        if (ReferenceEquals(before, after))
        {
            return None;
        }

        var a = Items(before);
        var b = Items(after);
        var removed = new List<T>();
        var added = new List<T>();
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (ReferenceEquals(a[i], b[j]))
            {
                i++;
                j++;
                continue;
            }

            if (Realign(a, i, b, j) is not { } skip)
            {
                return null;
            }

            var (skipA, skipB) = skip;

            removed.AddRange(a.Slice(i, skipA));
            added.AddRange(b.Slice(j, skipB));
            (i, j) = (i + skipA, j + skipB);
            if (removed.Count + added.Count > limit)
            {
                return null;
            }
        }

        removed.AddRange(a[i..]);
        added.AddRange(b[j..]);
        return removed.Count + added.Count > limit ? null : new(removed, added);
    }

    /// <summary>The fewest objects to skip in each list (at most <see cref="Reach"/> each) to meet a shared object again, or the rest of both when both end within reach.</summary>
    private static (int, int)? Realign(ReadOnlySpan<T> a, int i, ReadOnlySpan<T> b, int j)
    {
        for (var distance = 1; distance <= 2 * Reach; distance++)
        {
            for (var skipA = Math.Max(0, distance - Reach); skipA <= Math.Min(distance, Reach); skipA++)
            {
                var skipB = distance - skipA;
                if (i + skipA < a.Length && j + skipB < b.Length && ReferenceEquals(a[i + skipA], b[j + skipB]))
                {
                    return (skipA, skipB);
                }
            }
        }

        return a.Length - i <= Reach && b.Length - j <= Reach ? (a.Length - i, b.Length - j) : null;
    }

    /// <summary>The list's items without an interface call per item: arrays and lists as they are, anything else copied once.</summary>
    private static ReadOnlySpan<T> Items(IReadOnlyList<T> list) => list switch
    {
        T[] array => array,
        List<T> items => CollectionsMarshal.AsSpan(items),
        _ => list.ToArray(),
    };
}
