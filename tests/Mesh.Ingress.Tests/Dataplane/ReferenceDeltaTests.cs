using Mesh.Ingress.Dataplane;

namespace Mesh.Ingress.Tests.Dataplane;

/// <summary>
/// <see cref="ReferenceDelta{T}"/>'s promise, on random edits of a list: what it does not report is the same objects in
/// both lists (before minus removed equals after minus added, by reference), and a few nearby edits are found, not
/// given up on.
/// </summary>
public class ReferenceDeltaTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void What_is_not_reported_is_the_same_objects_in_both_lists(int seed)
    {
        var random = new Random(seed);
        for (var round = 0; round < 200; round++)
        {
            var before = Enumerable.Range(0, random.Next(0, 300)).Select(_ => new object()).ToList();
            var after = before.ToList();
            var edits = random.Next(0, 4);
            for (var e = 0; e < edits; e++)
            {
                var at = random.Next(after.Count + 1);
                switch (random.Next(4))
                {
                    case 0:
                        after.Insert(at, new object());
                        break;
                    case 1 when at < after.Count:
                        after.RemoveAt(at);
                        break;
                    case 2 when at < after.Count:
                        after[at] = new object();
                        break;
                    case 3 when after.Count > 1:
                        // Anywhere in the list: may be out of reach, then the answer may be "unknown" but never wrong.
                        var other = random.Next(after.Count);
                        at = Math.Min(at, after.Count - 1);
                        (after[at], after[other]) = (after[other], after[at]);
                        break;
                }
            }

            var delta = ReferenceDelta<object>.Of(before, after, limit: 1000);
            if (delta is null)
            {
                continue;
            }

            Assert.Equal(Without(before, delta.Removed), Without(after, delta.Added));
        }
    }

    [Fact]
    public void A_replaced_a_removed_and_an_appended_object_are_reported_and_nothing_else()
    {
        var before = Enumerable.Range(0, 1000).Select(_ => new object()).ToArray();
        var after = before.ToList();
        var (replaced, replacement, removed, appended) = (after[10], new object(), after[500], new object());
        after[10] = replacement;
        after.Remove(removed);
        after.Add(appended);
        var delta = ReferenceDelta<object>.Of(before, after, limit: 100);
        Assert.NotNull(delta);
        Assert.Equal(new[] { replaced, removed }, delta.Removed);
        Assert.Equal(new[] { replacement, appended }, delta.Added);
        Assert.Empty(ReferenceDelta<object>.Of(before, before, limit: 0)!.Added);
    }

    [Fact]
    public void Lists_that_part_for_longer_than_the_reach_or_differ_past_the_limit_are_unknown()
    {
        var before = Enumerable.Range(0, 100).Select(_ => new object()).ToArray();
        Assert.Null(ReferenceDelta<object>.Of(before, before.Reverse().ToArray(), limit: 1000));
        Assert.Null(ReferenceDelta<object>.Of(before, before.Select(_ => new object()).ToArray(), limit: 1000));
        var fewChanged = before.ToArray();
        fewChanged[3] = new object();
        fewChanged[60] = new object();
        Assert.Null(ReferenceDelta<object>.Of(before, fewChanged, limit: 3));
        Assert.NotNull(ReferenceDelta<object>.Of(before, fewChanged, limit: 4));
    }

    /// <summary>The list less the given objects (each once), by reference, in order.</summary>
    private static List<object> Without(IReadOnlyList<object> list, IReadOnlyList<object> gone)
    {
        var rest = list.ToList();
        foreach (var item in gone)
        {
            var at = rest.FindIndex(x => ReferenceEquals(x, item));
            Assert.True(at >= 0, "reported an object the list does not hold");
            rest.RemoveAt(at);
        }

        return rest;
    }
}
