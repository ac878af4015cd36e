using System.Diagnostics;

namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// Reads and changes one namespace's iptables through iptables-save / iptables-restore --noflush. After a
/// successful read or transaction it trusts what it knows of Mesh's chains for <paramref name="trustFor"/>
/// instead of running iptables-save again (at thousands of published ports a save costs most of a second);
/// a failure, or the trust running out at the periodic resync, reads the kernel again and repairs any drift.
/// With the nft flavour (iptables on nf_tables) the resync first asks the namespace's ruleset
/// <paramref name="generation"/>, as <see cref="Nftables.NftExecutor"/> does: unchanged, nothing was committed
/// since the rules were known exactly, and no iptables-save runs.
/// </summary>
public sealed class IptablesExecutor(ICommandRunner runner, IptablesFlavour flavour, TimeSpan trustFor, Nftables.INftGeneration? generation)
{
    private readonly Dictionary<(string Netns, string Tables), Known> _known = [];
    private readonly Lock _lock = new();

    /// <summary>Legacy iptables does not commit through nf_tables: its changes do not move the generation.</summary>
    private readonly Nftables.INftGeneration? _generation = flavour == IptablesFlavour.Nft ? generation : null;

    public IptablesExecutor(ICommandRunner runner, IptablesFlavour flavour, TimeSpan trustFor)
        : this(runner, flavour, trustFor, null)
    {
    }

    public IptablesExecutor(ICommandRunner runner, IptablesFlavour flavour)
        : this(runner, flavour, TimeSpan.Zero)
    {
    }

    public IptablesFlavour Flavour => flavour;

    public async Task<IptablesSave> ReadAsync(NetworkNamespacePath netns, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        var list = tables.ToList();
        var key = Key(netns, list);
        lock (_lock)
        {
            if (_known.TryGetValue(key, out var known) && Stopwatch.GetTimestamp() < known.Until)
            {
                return known.State;
            }
        }

        var before = _generation?.Read(netns);
        lock (_lock)
        {
            if (_known.TryGetValue(key, out var known) && before is not null && known.Generation == before)
            {
                _known[key] = known with { Until = Deadline() }; // nothing committed since: still exact
                return known.State;
            }
        }

        var text = new System.Text.StringBuilder();
        foreach (var table in list)
        {
            text.Append(await runner.RunCheckedInAsync(netns, flavour.Save, ["-t", table], null, cancellationToken).ConfigureAwait(false));
        }

        var state = IptablesSave.Parse(text.ToString());
        var after = _generation?.Read(netns);
        Trust(key, state, before is not null && after == before ? after : null); // a commit during the save: not exact
        return state;
    }

    /// <summary>Converges the namespace to <paramref name="desired"/>; returns whether anything changed.</summary>
    public async Task<bool> ApplyAsync(NetworkNamespacePath netns, IptablesRuleset desired, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        var actual = await ReadAsync(netns, tables, cancellationToken).ConfigureAwait(false);
        return await ApplyAsync(netns, desired, actual, tables, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Converges the namespace to <paramref name="desired"/> given what <see cref="ReadAsync"/> just returned for <paramref name="tables"/>.</summary>
    public async Task<bool> ApplyAsync(NetworkNamespacePath netns, IptablesRuleset desired, IptablesSave actual, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        var script = IptablesPlanner.Plan(desired, actual);
        if (script is null)
        {
            return false;
        }

        // What is written is exact afterwards only if what it was planned against still was (nobody committed since)
        // and the restore was the only commit: one generation step.
        var key = Key(netns, tables);
        uint? exactAt;
        lock (_lock)
        {
            exactAt = _known.TryGetValue(key, out var known) && ReferenceEquals(known.State, actual) ? known.Generation : null;
        }

        var before = exactAt is null ? null : _generation?.Read(netns);
        try
        {
            // iptables-legacy serialises every namespace's writers on one /run/xtables.lock: with many task namespaces
            // converging at once (the ipvs lab in user-mode-linux) 5 s was too short, and a failed write waits for the
            // next pass. The nft-backed iptables ignores the lock.
            await runner.RunCheckedInAsync(netns, flavour.Restore, ["--noflush", "-w", "30"], script, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            lock (_lock)
            {
                _known.Remove(key);
            }

            throw;
        }

        var applied = before is not null && before == exactAt ? _generation?.Read(netns) : null;
        Trust(key, IptablesSave.Of(desired), applied is not null && applied == before + 1 ? applied : null);
        return true;
    }

    /// <summary>Drops what is known of <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
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

    private void Trust((string, string) key, IptablesSave state, uint? generation)
    {
        lock (_lock)
        {
            _known[key] = new Known(state, Deadline(), generation);
        }
    }

    private long Deadline() => Stopwatch.GetTimestamp() + (long)(trustFor.TotalSeconds * Stopwatch.Frequency);

    /// <summary>What Mesh's chains hold, until when to believe it without asking, and the ruleset generation it was exact at (if known).</summary>
    private sealed record Known(IptablesSave State, long Until, uint? Generation);

    private static (string, string) Key(NetworkNamespacePath netns, IEnumerable<string> tables) => (netns.Path ?? "", string.Join(',', tables));
}
