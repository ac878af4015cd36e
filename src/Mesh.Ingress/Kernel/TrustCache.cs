using System.Diagnostics;

namespace Mesh.Ingress.Kernel;

/// <summary>
/// What an executor knows of its objects in the kernel, by key: believed without asking for <paramref name="trustFor"/>
/// after a read or a write, then only while the namespace's ruleset generation shows that nobody committed since it was
/// exact (<see cref="Find"/>), or while the caller can account for what was committed (the nf_tables change log).
/// The one implementation of the trust for the nf_tables and iptables-nft executors. Thread-safe.
/// </summary>
public sealed class TrustCache<TKey, TState>(TimeSpan trustFor)
    where TKey : notnull
    where TState : class
{
    private readonly Dictionary<TKey, Entry> _entries = [];
    private readonly Lock _lock = new();

    /// <summary>
    /// Accounts for the transactions committed from <paramref name="exactAt"/> to <paramref name="now"/> on what is known
    /// (<paramref name="state"/>): the generation it is exact at afterwards, or null when it cannot (then it is forgotten).
    /// </summary>
    public delegate uint? CatchUp(TKey key, TState state, uint exactAt, uint now);

    /// <summary>
    /// What is known of <paramref name="key"/>, if it may be believed, and the generation it is exact at: within the
    /// trust as remembered; past it only when <paramref name="generation"/> (asked only then, and only when the entry
    /// knows its generation) has not moved since, or <paramref name="catchUp"/> accounts for what moved it; then the
    /// trust is renewed. Otherwise the entry is forgotten and null returned: the caller reads the kernel.
    /// </summary>
    public Known? Find(TKey key, Func<uint?> generation, CatchUp? catchUp = null)
    {
        ArgumentNullException.ThrowIfNull(generation);
        Entry? entry;
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out entry))
            {
                return null;
            }

            if (Stopwatch.GetTimestamp() < entry.Until)
            {
                return new Known(entry.State, entry.Generation);
            }
        }

        var now = entry.Generation is null ? null : generation();
        var exactAt = now is null ? null : now == entry.Generation ? now : catchUp?.Invoke(key, entry.State, entry.Generation!.Value, now.Value);
        lock (_lock)
        {
            if (exactAt is not null && _entries.TryGetValue(key, out var current) && ReferenceEquals(current, entry))
            {
                _entries[key] = entry with { Until = Deadline(), Generation = exactAt };
                return new Known(entry.State, exactAt);
            }

            _entries.Remove(key);
            return null;
        }
    }

    /// <summary>What is remembered of <paramref name="key"/>, trusted or not (null when nothing is).</summary>
    public Known? Peek(TKey key)
    {
        lock (_lock)
        {
            return _entries.TryGetValue(key, out var entry) ? new Known(entry.State, entry.Generation) : null;
        }
    }

    /// <summary>Remembers <paramref name="state"/>, just read or written, exact at <paramref name="generation"/> (null: not known to be exact), and trusts it anew.</summary>
    public void Remember(TKey key, TState state, uint? generation)
    {
        lock (_lock)
        {
            _entries[key] = new Entry(state, Deadline(), generation);
        }
    }

    /// <summary>Replaces what is remembered of <paramref name="key"/>, if anything is, keeping its trust and generation.</summary>
    public void Update(TKey key, Func<TState, TState> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var entry))
            {
                _entries[key] = entry with { State = update(entry.State) };
            }
        }
    }

    public void Forget(TKey key)
    {
        lock (_lock)
        {
            _entries.Remove(key);
        }
    }

    /// <summary>Forgets every key <paramref name="match"/> selects (a namespace that is gone).</summary>
    public void ForgetWhere(Func<TKey, bool> match)
    {
        ArgumentNullException.ThrowIfNull(match);
        lock (_lock)
        {
            foreach (var key in _entries.Keys.Where(match).ToList())
            {
                _entries.Remove(key);
            }
        }
    }

    private long Deadline() => Stopwatch.GetTimestamp() + (long)(trustFor.TotalSeconds * Stopwatch.Frequency);

    /// <summary>What is known and the generation it is exact at (null: not known to be exact).</summary>
    public readonly record struct Known(TState State, uint? Generation);

    private sealed record Entry(TState State, long Until, uint? Generation);
}
