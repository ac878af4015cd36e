using System.Diagnostics;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Reads a table and applies scripts through <c>nft</c>; one <c>nft -f -</c> run is one atomic transaction.
/// After a successful read or transaction it trusts what it knows for <paramref name="trustFor"/> instead of
/// listing the table again: at thousands of services the listing costs seconds, the change itself milliseconds.
/// When the trust runs out (the periodic resync) it asks the namespace's ruleset <paramref name="generation"/>:
/// unchanged since what it knows was exact, nobody committed anything, and the trust is renewed without a
/// listing; otherwise, or after a failure, it lists the table again, which repairs any drift.
/// </summary>
public sealed class NftExecutor(ICommandRunner runner, TimeSpan trustFor, INftGeneration? generation)
{
    private readonly Dictionary<(string Netns, string Family, string Table), Known> _known = [];
    private readonly Lock _lock = new();

    public NftExecutor(ICommandRunner runner, TimeSpan trustFor)
        : this(runner, trustFor, null)
    {
    }

    public NftExecutor(ICommandRunner runner)
        : this(runner, TimeSpan.Zero)
    {
    }

    public async Task<NftTableState> ReadAsync(NetworkNamespacePath netns, string family, string table, CancellationToken cancellationToken)
    {
        var result = await runner.RunInAsync(netns, "nft", ["-j", "list", "table", family, table], null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            // "No such file or directory": the table does not exist yet. "Protocol not supported": this kernel has
            // no nf_tables (loaded), so no table can exist; writing one will fail with nft's own message.
            return result.Stderr.Contains("No such file", StringComparison.Ordinal) || result.Stderr.Contains("Protocol not supported", StringComparison.Ordinal)
                ? NftTableState.Missing
                : throw new CommandFailedException($"nft -j list table {family} {table} (in {netns})", result);
        }

        return NftTableState.Parse(result.Stdout);
    }

    public Task ApplyAsync(NetworkNamespacePath netns, string script, CancellationToken cancellationToken) =>
        runner.RunCheckedInAsync(netns, "nft", ["-f", "-"], script, cancellationToken);

    /// <summary>
    /// Converges one Mesh table in <paramref name="netns"/>: planned and applied when <paramref name="desired"/>
    /// is given, deleted when it is null and the table exists. Returns whether anything changed.
    /// </summary>
    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, NftDesiredTable? desired, string family, string table, CancellationToken cancellationToken)
    {
        var key = (netns.Path ?? "", family, table);
        var (actual, exactAt) = Trusted(key, netns);
        if (actual is null)
        {
            var listedAt = generation?.Read(netns);
            actual = await ReadAsync(netns, family, table, cancellationToken).ConfigureAwait(false);
            var after = generation?.Read(netns);
            exactAt = listedAt is not null && after == listedAt ? after : null; // a commit during the listing: not exact
            Remember(key, actual, exactAt);
        }

        var script = desired is not null
            ? NftPlanner.Plan(desired, actual)
            : actual.Exists ? $"delete table {family} {table}\n" : null;
        if (script is null)
        {
            return false;
        }

        // What is written is exact afterwards only if what it was planned against still was (nobody committed since)
        // and the transaction was the only commit: one generation step.
        var before = exactAt is null ? null : generation?.Read(netns);
        try
        {
            await ApplyAsync(netns, script, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Forget(key);
            throw;
        }

        var applied = before is not null && before == exactAt ? generation?.Read(netns) : null;
        Remember(key, desired is null ? NftTableState.Missing : NftPlanner.Expected(desired), applied is not null && applied == before + 1 ? applied : null);
        return true;
    }

    /// <summary>
    /// What is known of the table, if it may be believed, and the generation it is known to be exact at: within the
    /// trust, as remembered; past it, only when the generation has not moved since (then the trust is renewed).
    /// </summary>
    private (NftTableState? State, uint? ExactAt) Trusted((string, string, string) key, NetworkNamespacePath netns)
    {
        Known? entry;
        lock (_lock)
        {
            if (!_known.TryGetValue(key, out entry))
            {
                return (null, null);
            }

            if (Stopwatch.GetTimestamp() < entry.Until)
            {
                return (entry.State, entry.Generation);
            }
        }

        var now = entry.Generation is null ? null : generation?.Read(netns);
        lock (_lock)
        {
            if (now is not null && now == entry.Generation)
            {
                _known[key] = entry with { Until = Deadline() };
                return (entry.State, now);
            }

            _known.Remove(key);
            return (null, null);
        }
    }

    private void Remember((string, string, string) key, NftTableState state, uint? generation)
    {
        lock (_lock)
        {
            _known[key] = new Known(state, Deadline(), generation);
        }
    }

    private long Deadline() => Stopwatch.GetTimestamp() + (long)(trustFor.TotalSeconds * Stopwatch.Frequency);

    /// <summary>Drops what was written into <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns)
    {
        lock (_lock)
        {
            foreach (var key in _known.Keys.Where(k => k.Netns == (netns.Path ?? "")).ToList())
            {
                _known.Remove(key);
            }
        }
    }

    private void Forget((string, string, string) key)
    {
        lock (_lock)
        {
            _known.Remove(key);
        }
    }

    /// <summary>What the table holds, until when to believe it without asking, and the ruleset generation it was exact at (if known).</summary>
    private sealed record Known(NftTableState State, long Until, uint? Generation);
}
