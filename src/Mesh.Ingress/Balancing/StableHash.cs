namespace Mesh.Ingress.Balancing;

/// <summary>
/// A hash that is the same in every process and on every node (string.GetHashCode is randomized per process): FNV-1a
/// over the bytes with a seed, finished with SplitMix64's mixer so nearby inputs (addresses one apart) spread.
/// </summary>
public static class StableHash
{
    public const ulong OffsetSeed = 0x6d61676c65762d6fUL; // "maglev-o"
    public const ulong SkipSeed = 0x6d61676c65762d73UL; // "maglev-s"
    public const ulong ClientSeed = 0x6d61676c65762d63UL; // "maglev-c"

    public static ulong Of(ReadOnlySpan<byte> bytes, ulong seed)
    {
        var h = 0xcbf29ce484222325UL ^ seed;
        foreach (var b in bytes)
        {
            h ^= b;
            h *= 0x100000001b3UL;
        }

        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9UL;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebUL;
        h ^= h >> 31;
        return h;
    }
}
