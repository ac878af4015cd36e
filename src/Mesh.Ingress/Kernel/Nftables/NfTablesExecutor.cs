using System.Diagnostics;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Converges Mesh's nftables tables through nf_tables netlink (no <c>nft</c> process): plan against what is known of
/// the table, one batch, one commit. After a successful read or commit it trusts what it knows for
/// <paramref name="trustFor"/> instead of reading the table again. When the trust runs out (the periodic resync) it asks
/// the namespace's ruleset generation: unchanged since what it knows was exact, nobody committed anything, and the trust
/// is renewed without a read; otherwise, or after a failure, it reads the table again, which repairs any drift.
/// Between reads it plans a change from its <see cref="NftTableMemory"/>, by the services (element groups) that changed,
/// not the whole table; after a read the whole table is planned against what was read.
/// A handle (socket) is opened per converge and only when needed: its socket keeps the namespace alive.
/// </summary>
public sealed class NfTablesExecutor(TimeSpan trustFor)
{
    private readonly Dictionary<(string Netns, Family Family, string Table), Known> _known = [];
    private readonly Lock _lock = new();
    private int _reads;

    public NfTablesExecutor()
        : this(TimeSpan.Zero)
    {
    }

    /// <summary>How many times a table was read back from the kernel (what the trust and the generation save).</summary>
    public int Reads => Volatile.Read(ref _reads);

    /// <summary>
    /// Converges one Mesh table in <paramref name="netns"/>: planned and committed when <paramref name="desired"/>
    /// is given, deleted when it is null and the table exists. Returns whether anything changed.
    /// </summary>
    public Task<bool> ConvergeAsync(NetworkNamespacePath netns, NftDesiredTable? desired, Family family, string table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netns);
        cancellationToken.ThrowIfCancellationRequested();
        using var handle = new LazyHandle(netns.Path);
        return Task.FromResult(Converge(handle, (netns.Path ?? "", family, table), desired, family, table));
    }

    private bool Converge(LazyHandle handle, (string, Family, string) key, NftDesiredTable? desired, Family family, string table)
    {
        var (actual, exactAt, memory) = Trusted(key, handle);
        if (actual is null)
        {
            var readAt = Generation(handle);
            Interlocked.Increment(ref _reads);
            actual = Read(handle, family, table);
            var after = Generation(handle);
            exactAt = readAt is not null && after == readAt ? after : null; // a commit during the read: not exact
            Remember(key, actual, exactAt, null);
        }

        if (desired is null)
        {
            if (!actual.Exists)
            {
                return false;
            }

            Commit(handle, key, NftPlanner.Delete(family, table), exactAt, NftTableState.Missing, null);
            return true;
        }

        // Between reads the memory plans by the services that changed (the same change as the whole-table diff); after
        // a read, another skeleton or a table not built in groups, the whole table is planned against what is known.
        if (memory?.Plan(desired) is { } change)
        {
            if (change.Batch is null)
            {
                memory.Apply(change);
                return false;
            }

            Commit(handle, key, change.Batch, exactAt, null, memory, change);
            return true;
        }

        // Slots numgen picks stay where the kernel holds them (the remembered state below must say so too).
        var stable = NftPlanner.Stabilize(desired, actual);
        var batch = NftPlanner.PlanStable(stable, actual);
        // A table built flat (a task's VIP table) is planned whole every time: nothing to keep for it.
        var remembered = desired.Maps.All(m => m.Groups is not null) ? NftTableMemory.Of(desired, stable) : null;
        if (batch is null)
        {
            if (remembered is not null)
            {
                Attach(key, remembered); // what is known is exactly this plan: the next change is planned from here
            }

            return false;
        }

        Commit(handle, key, batch, exactAt, remembered is null ? NftPlanner.Expected(stable) : null, remembered);
        return true;
    }

    /// <summary>
    /// Commits <paramref name="batch"/> and remembers what the table holds then: <paramref name="state"/>, or
    /// <paramref name="memory"/> (with <paramref name="change"/> taken in). Forgets the table when the commit fails.
    /// </summary>
    private void Commit(LazyHandle handle, (string, Family, string) key, NfTablesBatch batch, uint? exactAt, NftTableState? state, NftTableMemory? memory, NftTableMemory.Change? change = null)
    {
        // What is written is exact afterwards only if what it was planned against still was (nobody committed since)
        // and the transaction was the only commit: one generation step.
        var before = exactAt is null ? null : Generation(handle);
        try
        {
            handle.Value.Commit(batch);
        }
        catch
        {
            Forget(key);
            throw;
        }

        if (change is not null)
        {
            memory!.Apply(change);
        }

        var applied = before is not null && before == exactAt ? Generation(handle) : null;
        Remember(key, state ?? memory!.State, applied is not null && applied == before + 1 ? applied : null, memory);
    }

    private static NftTableState Read(LazyHandle handle, Family family, string table)
    {
        try
        {
            // The handle is opened here, inside the catch: on a kernel without nfnetlink (user-mode-linux's) the socket
            // itself fails with EPROTONOSUPPORT, and there is no table to find (what the other dataplane's cleanup asks).
            return NftTableState.Read(handle.Value, family, table);
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENOENT or Errno.EAFNOSUPPORT or Errno.EPROTONOSUPPORT or Errno.EOPNOTSUPP)
        {
            // The table went away during the read, or this kernel has no nf_tables: no table. Writing one fails
            // with the kernel's own error.
            return NftTableState.Missing;
        }
    }

    private static uint? Generation(LazyHandle handle)
    {
        try
        {
            return handle.Value.GetGeneration();
        }
        catch (Exception e) when (e is NetlinkException or IOException or InvalidOperationException)
        {
            return null; // not known: the caller reads the table instead of trusting
        }
    }

    /// <summary>
    /// What is known of the table, if it may be believed, and the generation it is known to be exact at: within the
    /// trust, as remembered; past it, only when the generation has not moved since (then the trust is renewed).
    /// </summary>
    private (NftTableState? State, uint? ExactAt, NftTableMemory? Memory) Trusted((string, Family, string) key, LazyHandle handle)
    {
        Known? entry;
        lock (_lock)
        {
            if (!_known.TryGetValue(key, out entry))
            {
                return (null, null, null);
            }

            if (Stopwatch.GetTimestamp() < entry.Until)
            {
                return (entry.State, entry.Generation, entry.Memory);
            }
        }

        var now = entry.Generation is null ? null : Generation(handle);
        lock (_lock)
        {
            if (now is not null && now == entry.Generation)
            {
                _known[key] = entry with { Until = Deadline() };
                return (entry.State, now, entry.Memory);
            }

            _known.Remove(key);
            return (null, null, null);
        }
    }

    private void Remember((string, Family, string) key, NftTableState state, uint? generation, NftTableMemory? memory)
    {
        lock (_lock)
        {
            _known[key] = new Known(state, Deadline(), generation, memory);
        }
    }

    /// <summary>Keeps planning from <paramref name="memory"/> without renewing the trust (nothing was read or written).</summary>
    private void Attach((string, Family, string) key, NftTableMemory memory)
    {
        lock (_lock)
        {
            if (_known.TryGetValue(key, out var entry))
            {
                _known[key] = entry with { ReadState = memory.State, Memory = memory };
            }
        }
    }

    private long Deadline() => Stopwatch.GetTimestamp() + (long)(trustFor.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Drops what was written into <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns)
    {
        ArgumentNullException.ThrowIfNull(netns);
        lock (_lock)
        {
            foreach (var key in _known.Keys.Where(k => k.Netns == (netns.Path ?? "")).ToList())
            {
                _known.Remove(key);
            }
        }
    }

    private void Forget((string, Family, string) key)
    {
        lock (_lock)
        {
            _known.Remove(key);
        }
    }

    /// <summary>
    /// What the table holds, until when to believe it without asking, the ruleset generation it was exact at (if known),
    /// and the memory that plans the next change by what changed (what the table holds is then its live view).
    /// </summary>
    private sealed record Known(NftTableState ReadState, long Until, uint? Generation, NftTableMemory? Memory)
    {
        public NftTableState State => Memory?.State ?? ReadState;
    }

    /// <summary>A handle opened on first use: a converge that trusts what it knows and has nothing to write opens none.</summary>
    private sealed class LazyHandle(string? netnsPath) : IDisposable
    {
        private NfTablesHandle? _handle;

        public NfTablesHandle Value => _handle ??= NfTablesHandle.Open(netnsPath);

        public void Dispose() => _handle?.Dispose();
    }
}
