using System.Net;
using System.Text;

namespace Mesh.Ingress.Balancing;

/// <summary>
/// Maglev consistent hashing (Eisenbud et al., NSDI 2016, section 3.4): a lookup table of <see cref="Size"/> buckets
/// (a prime), each holding one backend. Every backend walks its own permutation of the buckets (an offset and a skip
/// from two hashes of its key) and the backends take turns claiming their next free bucket, so each ends up with
/// ⌊M/N⌋ or ⌈M/N⌉ buckets (shares equal within ±1 bucket), and a backend leaving frees only its own buckets: the
/// others keep theirs but for the few a newcomer's turn happens to take (the paper measures a little over 1/N moved).
/// The table depends only on the set of keys (sorted first) and fixed hashes, so every node computes the same one.
/// </summary>
public sealed class MaglevTable
{
    /// <summary>
    /// The table sizes Mesh uses, primes. 251 buckets cost ~0.5-1 s per nft transaction for 100 services (25,100 map
    /// elements), 1021 ~2.4 s and 4093 ~13 s (BENCHMARKS.md): the smallest that gives each backend at least
    /// <see cref="BucketsPerBackend"/> buckets is chosen, so the share imbalance stays within ±1/10 of a share.
    /// </summary>
    public static IReadOnlyList<int> Sizes { get; } = [251, 1021, 4093];

    /// <summary>Buckets per backend the size is chosen for: the worst share is then within ±10% of 1/N.</summary>
    public const int BucketsPerBackend = 10;

    private readonly int[] _entries;

    private MaglevTable(IReadOnlyList<string> backends, int[] entries)
    {
        Backends = backends;
        _entries = entries;
    }

    /// <summary>The backends, sorted (ordinal): <see cref="Entries"/> holds indexes into this list.</summary>
    public IReadOnlyList<string> Backends { get; }

    /// <summary>Bucket → index of its backend in <see cref="Backends"/>.</summary>
    public IReadOnlyList<int> Entries => _entries;

    public int Size => _entries.Length;

    /// <summary>The table size for <paramref name="backends"/> backends (see <see cref="Sizes"/>).</summary>
    public static int SizeFor(int backends)
    {
        foreach (var size in Sizes)
        {
            if (size >= (long)backends * BucketsPerBackend)
            {
                return size;
            }
        }

        return Sizes[^1];
    }

    /// <summary>Builds the table over <paramref name="keys"/> (duplicates count once) with <paramref name="size"/> buckets (a prime, more than the keys), or <see cref="SizeFor"/> when 0.</summary>
    public static MaglevTable Build(IEnumerable<string> keys, int size = 0)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var backends = keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        if (size == 0)
        {
            size = SizeFor(backends.Length);
        }

        if (backends.Length == 0)
        {
            return new MaglevTable(backends, []);
        }

        if (size < 2 || !IsPrime(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "a Maglev table's size must be a prime");
        }

        var n = backends.Length;
        var offset = new int[n];
        var skip = new int[n];
        var next = new int[n];
        for (var i = 0; i < n; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(backends[i]);
            offset[i] = (int)(StableHash.Of(bytes, StableHash.OffsetSeed) % (ulong)size);
            skip[i] = (int)(StableHash.Of(bytes, StableHash.SkipSeed) % (ulong)(size - 1)) + 1;
        }

        var entries = new int[size];
        Array.Fill(entries, -1);
        var filled = 0;

        // With more backends than buckets the first `size` turns fill the table; the rest get none.
        while (true)
        {
            for (var i = 0; i < n; i++)
            {
                var c = (int)((offset[i] + ((long)next[i] * skip[i])) % size);
                while (entries[c] >= 0)
                {
                    next[i]++;
                    c = (int)((offset[i] + ((long)next[i] * skip[i])) % size);
                }

                entries[c] = i;
                next[i]++;
                if (++filled == size)
                {
                    return new MaglevTable(backends, entries);
                }
            }
        }
    }

    /// <summary>The backend of a client address (the relay's and the L7 entry's lookup; nft hashes with jhash instead).</summary>
    public string? Lookup(IPAddress client)
    {
        ArgumentNullException.ThrowIfNull(client);
        if (_entries.Length == 0)
        {
            return null;
        }

        var address = client.IsIPv4MappedToIPv6 ? client.MapToIPv4() : client;
        return Backends[_entries[(int)(StableHash.Of(address.GetAddressBytes(), StableHash.ClientSeed) % (ulong)_entries.Length)]];
    }

    /// <summary>Buckets per backend, in <see cref="Backends"/> order.</summary>
    public int[] Shares()
    {
        var shares = new int[Backends.Count];
        foreach (var e in _entries)
        {
            shares[e]++;
        }

        return shares;
    }

    private static bool IsPrime(int n)
    {
        for (var d = 2; (long)d * d <= n; d++)
        {
            if (n % d == 0)
            {
                return false;
            }
        }

        return true;
    }
}
