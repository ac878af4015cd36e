using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Converges Mesh's nftables tables through nf_tables netlink (no <c>nft</c> process): plan against what is known of
/// the table, one batch, one commit. After a successful read or commit it trusts what it knows for
/// <paramref name="trustFor"/> instead of reading the table again (<see cref="TrustCache{TKey, TState}"/>). When the
/// trust runs out (the periodic resync) it asks the namespace's ruleset generation: unchanged since what it knows was
/// exact, nobody committed anything, and the trust is renewed without a read. When it moved, a table planned by its
/// <see cref="NftTableMemory"/> (the ingress sandbox's) asks its <see cref="NftChangeLog"/> what the transactions in
/// between did: only other tables, or elements added or deleted in Mesh's maps (taken into the memory and repaired by
/// the next plan), and the trust is renewed without a read; a rule, chain or set of the table changed too, and only the
/// table's chains, rules and sets are read back (<see cref="NftTableStructure"/>: not the maps' elements, which the
/// memory still knows) and the next plan repairs them; any doubt (an overrun, a gap, an unknown message, the table or
/// one of its maps deleted) reads the whole table again, which repairs any drift. Tables planned whole (the small per-task tables and the host table) keep no log: a moved
/// generation reads them (a few chains). Between reads the memory plans a change by the services (element groups)
/// that changed, not the whole table; after a read the whole table is planned against what was read.
/// A handle (socket) is opened per converge and only when needed: its socket keeps the namespace alive. A change log
/// keeps its socket open (and the sandbox namespace alive) until <see cref="Forget(NetworkNamespacePath)"/>.
/// </summary>
public sealed class NfTablesExecutor(TimeSpan trustFor, int changeLogBuffer) : IDisposable
{
    private readonly TrustCache<(string Netns, Family Family, string Table), Known> _trust = new(trustFor);
    private readonly Dictionary<(string Netns, Family Family, string Table), Kept> _logs = [];
    private readonly Lock _lock = new();
    private int _reads;
    private int _followed;
    private int _structureReads;
    private int _handlesOpened;
    private string? _readBecause;

    public NfTablesExecutor(TimeSpan trustFor)
        : this(trustFor, NftChangeLog.DefaultReceiveBuffer)
    {
    }

    public NfTablesExecutor()
        : this(TimeSpan.Zero)
    {
    }

    /// <summary>How many times a table was read back from the kernel (what the trust, the generation and the log save).</summary>
    public int Reads => Volatile.Read(ref _reads);

    /// <summary>How many times a moved generation was accounted for by the change log instead of a read.</summary>
    public int Followed => Volatile.Read(ref _followed);

    /// <summary>How many times the change log showed a rule, chain or set changed and only the table's structure was read back (no element).</summary>
    public int StructureReads => Volatile.Read(ref _structureReads);

    /// <summary>nf_tables sockets opened so far (a table followed by its change log keeps its own between converges).</summary>
    public int HandlesOpened => Volatile.Read(ref _handlesOpened);

    /// <summary>Why the change log last could not vouch for a table (its doubt), for diagnostics and tests.</summary>
    public string? LastDoubt => Volatile.Read(ref _readBecause);

    /// <summary>
    /// Converges one Mesh table in <paramref name="netns"/>: planned and committed when <paramref name="desired"/>
    /// is given, deleted when it is null and the table exists. Returns whether anything changed.
    /// </summary>
    public Task<bool> ConvergeAsync(NetworkNamespacePath netns, NftDesiredTable? desired, Family family, string table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netns);
        cancellationToken.ThrowIfCancellationRequested();
        var key = (netns.Path ?? "", family, table);
        var handle = KeptHandle(key) ?? new LazyHandle(netns.Path, () => Interlocked.Increment(ref _handlesOpened));
        try
        {
            var changed = Converge(handle, key, desired, family, table);
            KeepLog(handle, key);
            return Task.FromResult(changed);
        }
        finally
        {
            if (!ReferenceEquals(KeptHandle(key), handle))
            {
                handle.CloseLater();
            }
        }
    }

    private bool Converge(LazyHandle handle, (string, Family, string) key, NftDesiredTable? desired, Family family, string table)
    {
        NftTableState actual;
        uint? exactAt;
        NftTableMemory? memory;
        if (_trust.Find(key, () => Generation(handle), (k, known, from, to) => CatchUp(handle, k, known, from, to)) is { } trusted)
        {
            (actual, exactAt, memory) = (trusted.State.State, trusted.Generation, trusted.State.Memory);
        }
        else
        {
            // The log (if the table keeps one) starts again before the read: what it will hold comes after what is read.
            Log(key)?.Restart(() => Generation(handle));
            var readAt = Generation(handle);
            Interlocked.Increment(ref _reads);
            actual = Read(handle, family, table);
            exactAt = RulesetGeneration.ExactAfterRead(readAt, Generation(handle)); // a commit during the read: not exact
            memory = null;
            _trust.Remember(key, new Known(actual, null), exactAt);
        }

        if (desired is null)
        {
            if (!actual.Exists)
            {
                return false;
            }

            Commit(handle, key, NftPlanner.Delete(family, table), exactAt, new Known(NftTableState.Missing, null));
            return true;
        }

        // Between reads the memory plans by the services that changed (the same change as the whole-table diff, and the
        // keys others changed put back); after a read, another skeleton or a table not built in groups, the whole table
        // is planned against what is known.
        if (memory?.Plan(desired) is { } change)
        {
            if (change.Batch is null)
            {
                memory.Apply(change);
                return false;
            }

            Commit(handle, key, change.Batch, exactAt, new Known(memory.State, memory), () => memory.Apply(change));
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
                // What is known is exactly this plan: the next change is planned from here.
                _trust.Update(key, known => new Known(known.ReadState, remembered));
            }

            return false;
        }

        Commit(handle, key, batch, exactAt, remembered is null ? new Known(NftPlanner.Expected(stable), null) : new Known(remembered.State, remembered));
        return true;
    }

    /// <summary>
    /// Commits <paramref name="batch"/> and remembers what the table holds then (<paramref name="after"/>, once
    /// <paramref name="applied"/> took the change into the memory). Forgets the table when the commit fails.
    /// </summary>
    private void Commit(LazyHandle handle, (string, Family, string) key, NfTablesBatch batch, uint? exactAt, Known after, Action? applied = null)
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
            _trust.Forget(key);
            throw;
        }

        applied?.Invoke();
        var generation = RulesetGeneration.ExactAfterWrite(exactAt, before, before is not null && before == exactAt ? Generation(handle) : null);
        _trust.Remember(key, after, generation);
        if (generation is { } own)
        {
            Log(key)?.Skip(own, () => Generation(handle)); // Mesh's own transaction: nothing in it to follow
        }
    }

    /// <summary>
    /// The change log's account of the transactions from <paramref name="from"/> to <paramref name="to"/>: the foreign
    /// elements and, when a rule, chain or set changed, the structure read back, taken into the memory, and the
    /// generation it is exact at; or null (a doubt: the table is read).
    /// </summary>
    private uint? CatchUp(LazyHandle handle, (string, Family, string) key, Known known, uint from, uint to)
    {
        if (known.Memory is not { } memory || Log(key) is not { } log)
        {
            return null;
        }

        var outcome = log.Follow(from, to, memory.Knows);
        if (outcome.ExactAt is null)
        {
            Volatile.Write(ref _readBecause, outcome.DoubtReason);
            return null;
        }

        NftTableStructure? structure = null;
        if (outcome.Structure)
        {
            Interlocked.Increment(ref _structureReads);
            structure = ReadStructure(handle, key.Item2, key.Item3);
            // Read at generation `to` only if nobody committed during the read (the log would follow it, the read not).
            if (structure is null || Generation(handle) != to)
            {
                Volatile.Write(ref _readBecause, structure is null ? "the table's structure could not be read (gone?)" : "a commit while the table's structure was read");
                return null;
            }
        }

        foreach (var foreign in outcome.Elements)
        {
            memory.TakeForeign(foreign.Map, foreign.Element, foreign.Deleted);
        }

        if (structure is not null)
        {
            memory.TakeStructure(structure);
        }

        Interlocked.Increment(ref _followed);
        return outcome.ExactAt;
    }

    /// <summary>
    /// A table planned by its memory keeps a change log (opened once it is known exactly) and the handle the converge
    /// used, for the next converges of that table; any other keeps neither.
    /// Why keep the handle: closing an nf_tables socket right after a transaction that deleted something waits for the
    /// kernel to finish destroying it (an RCU grace period: 5-15 ms measured here), which was most of a pass that replaced
    /// one task; and the namespace is held by the change log's socket already.
    /// </summary>
    private void KeepLog(LazyHandle handle, (string Netns, Family Family, string Table) key)
    {
        var keep = _trust.Peek(key) is { State.Memory: not null, Generation: not null };
        Kept? opened = null, closed = null;
        lock (_lock)
        {
            if (keep && !_logs.ContainsKey(key))
            {
                _logs[key] = opened = new Kept(new NftChangeLog(key.Netns.Length == 0 ? null : key.Netns, key.Family, key.Table, changeLogBuffer), handle);
            }
            else if (!keep && _logs.Remove(key, out var log))
            {
                closed = log;
            }
        }

        // Opened after the generation it must vouch from: it does only if nobody committed in between (else the next
        // moved generation is a doubt, and a read).
        opened?.Log.Restart(() => Generation(handle));
        closed?.Log.Dispose();
        if (closed is not null && !ReferenceEquals(closed.Handle, handle))
        {
            closed.Handle.Dispose(); // the one in use is the converge's to close
        }
    }

    private NftChangeLog? Log((string, Family, string) key)
    {
        lock (_lock)
        {
            return _logs.GetValueOrDefault(key)?.Log;
        }
    }

    private LazyHandle? KeptHandle((string, Family, string) key)
    {
        lock (_lock)
        {
            return _logs.GetValueOrDefault(key)?.Handle;
        }
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

    private static NftTableStructure? ReadStructure(LazyHandle handle, Family family, string table)
    {
        try
        {
            return NftTableStructure.Read(handle.Value, family, table);
        }
        catch (Exception e) when (e is NetlinkException or IOException)
        {
            // The table went away during the read, or the read failed: a doubt, the whole read says what is there (or
            // fails with the error).
            return null;
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

    /// <summary>Drops what was written into <paramref name="netns"/> and closes its change logs (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns)
    {
        ArgumentNullException.ThrowIfNull(netns);
        var path = netns.Path ?? "";
        _trust.ForgetWhere(k => k.Netns == path);
        List<Kept> closed;
        lock (_lock)
        {
            closed = [.. _logs.Where(kv => kv.Key.Netns == path).Select(kv => kv.Value)];
            foreach (var key in _logs.Keys.Where(k => k.Netns == path).ToList())
            {
                _logs.Remove(key);
            }
        }

        closed.ForEach(log => log.Dispose());
    }

    public void Dispose()
    {
        List<Kept> logs;
        lock (_lock)
        {
            logs = [.. _logs.Values];
            _logs.Clear();
        }

        logs.ForEach(log => log.Dispose());
    }

    /// <summary>
    /// What the table holds as read or written, and the memory that plans the next change by what changed (what the
    /// table holds is then its live view).
    /// </summary>
    private sealed record Known(NftTableState ReadState, NftTableMemory? Memory)
    {
        public NftTableState State => Memory?.State ?? ReadState;
    }

    /// <summary>A table's change log and the handle its converges use, closed together.</summary>
    private sealed record Kept(NftChangeLog Log, LazyHandle Handle) : IDisposable
    {
        public void Dispose()
        {
            Log.Dispose();
            Handle.Dispose();
        }
    }

    /// <summary>A handle opened on first use: a converge that trusts what it knows and has nothing to write opens none.</summary>
    private sealed class LazyHandle(string? netnsPath, Action opened) : IDisposable
    {
        private NfTablesHandle? _handle;

        public NfTablesHandle Value
        {
            get
            {
                if (_handle is null)
                {
                    _handle = NfTablesHandle.Open(netnsPath);
                    opened();
                }

                return _handle;
            }
        }

        public void Dispose() => _handle?.Dispose();

        /// <summary>
        /// Closed off the converge's path: closing an nf_tables socket after a transaction that deleted something waits
        /// for the kernel to destroy it (an RCU grace period, 5-20 ms here), a wait no caller needs (a task namespace's
        /// VIP table losing a backend paid it per namespace).
        /// </summary>
        public void CloseLater()
        {
            if (_handle is { } opened)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static h => h.Dispose(), opened, preferLocal: false);
            }
        }
    }
}
