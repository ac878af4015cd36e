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
    private readonly TrustCache<(string Netns, string Tables), IptablesSave> _trust = new(trustFor);

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
        var asked = false;
        uint? before = null;
        if (_trust.Find(key, () =>
            {
                asked = true;
                return before = _generation?.Read(netns);
            }) is { } known)
        {
            return known.State;
        }

        // The generation asked past the trust is the one the save starts from; else it is asked now.
        before = asked ? before : _generation?.Read(netns);
        var text = new System.Text.StringBuilder();
        foreach (var table in list)
        {
            text.Append(await runner.RunCheckedInAsync(netns, flavour.Save, ["-t", table], null, cancellationToken).ConfigureAwait(false));
        }

        var state = IptablesSave.Parse(text.ToString());
        _trust.Remember(key, state, RulesetGeneration.ExactAfterRead(before, _generation?.Read(netns)));
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

        var key = Key(netns, tables);
        var exactAt = _trust.Peek(key) is { } known && ReferenceEquals(known.State, actual) ? known.Generation : null;
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

        var after = before is not null && before == exactAt ? _generation?.Read(netns) : null;
        _trust.Remember(key, IptablesSave.Of(desired), RulesetGeneration.ExactAfterWrite(exactAt, before, after));
        return true;
    }

    /// <summary>Drops what is known of <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns) => _trust.ForgetWhere(k => k.Netns == (netns.Path ?? ""));

    private static (string, string) Key(NetworkNamespacePath netns, IEnumerable<string> tables) => (netns.Path ?? "", string.Join(',', tables));
}
