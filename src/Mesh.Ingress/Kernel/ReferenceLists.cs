namespace Mesh.Ingress.Kernel;

/// <summary>Lists of immutable objects compared by reference: the builders and planners keep unchanged objects as the same objects.</summary>
internal static class ReferenceLists
{
    /// <summary>Whether both lists hold the very same objects in the same order.</summary>
    public static bool Same<T>(IReadOnlyList<T> a, IReadOnlyList<T> b) where T : class
    {
        if (a.Count != b.Count)
        {
            return false;
        }

        for (var i = 0; i < a.Count; i++)
        {
            if (!ReferenceEquals(a[i], b[i]))
            {
                return false;
            }
        }

        return true;
    }
}
