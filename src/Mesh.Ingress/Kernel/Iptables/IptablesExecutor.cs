namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// Reads and changes one namespace's iptables through iptables-save / iptables-restore --noflush. After a
/// successful read or transaction it trusts what it knows of Mesh's chains for <paramref name="trustFor"/>
/// instead of running iptables-save again (at thousands of published ports a save costs most of a second);
/// a failure, or the trust running out at the periodic resync, reads the kernel again and repairs any drift.
/// With the nft flavour (iptables on nf_tables) the resync first asks the namespace's ruleset
/// <paramref name="generation"/> (the same <see cref="TrustCache{TKey, TState}"/> as <see cref="Nftables.NfTablesExecutor"/>): unchanged, nothing was committed
/// since the rules were known exactly, and no iptables-save runs.
/// </summary>
public sealed class IptablesExecutor(ICommandRunner runner, IptablesFlavour flavour, TimeSpan trustFor, Nftables.INftGeneration? generation)
{
    /// <summary>
    /// Per namespace, one save of every table: a task namespace on the ipvs dataplane is asked for filter + nat (its DNS
    /// rules) and mangle (its VIP marks), and each process costs most of a second under user-mode-linux or qemu.
    /// </summary>
    private readonly TrustCache<string, IptablesSave> _trust = new(trustFor);

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

    /// <summary>
    /// Mesh's chains and the jumps into them in <paramref name="tables"/>. One iptables-save without <c>-t</c> reads
    /// every table (and, unlike <c>-t</c>, instantiates none that the namespace does not have yet: a table that is
    /// not there holds nothing of Mesh's).
    /// </summary>
    public async Task<IptablesSave> ReadAsync(NetworkNamespacePath netns, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netns);
        var list = tables.ToList();
        var key = Key(netns);
        var asked = false;
        uint? before = null;
        if (_trust.Find(key, () =>
            {
                asked = true;
                return before = _generation?.Read(netns);
            }) is { } known)
        {
            return known.State.Only(list);
        }

        // The generation asked past the trust is the one the save starts from; else it is asked now.
        before = asked ? before : _generation?.Read(netns);
        var state = IptablesSave.Parse(await runner.RunCheckedInAsync(netns, flavour.Save, [], null, cancellationToken).ConfigureAwait(false));
        _trust.Remember(key, state, RulesetGeneration.ExactAfterRead(before, _generation?.Read(netns)));
        return state.Only(list);
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
        ArgumentNullException.ThrowIfNull(netns);
        var script = IptablesPlanner.Plan(desired, actual);
        if (script is null)
        {
            return false;
        }

        // What is known of the namespace still stands for its other tables only if the plan was made from it.
        var key = Key(netns);
        var known = _trust.Peek(key) is { } k && ReferenceEquals(k.State.Only(tables), actual) ? k : (TrustCache<string, IptablesSave>.Known?)null;
        var exactAt = known?.Generation;
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
            _trust.Forget(key);
            throw;
        }

        if (known is not { } was)
        {
            // Planned from a save that is no longer what is known: the other tables are read again next time.
            _trust.Forget(key);
            return true;
        }

        var after = before is not null && before == exactAt ? _generation?.Read(netns) : null;
        _trust.Remember(key, was.State.Replacing(tables, IptablesSave.Of(desired)), RulesetGeneration.ExactAfterWrite(exactAt, before, after));
        return true;
    }

    /// <summary>Drops what is known of <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns) => _trust.Forget(Key(netns));

    private static string Key(NetworkNamespacePath netns) => netns.Path ?? "";
}
