namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>Reads and changes one namespace's iptables through iptables-save / iptables-restore --noflush.</summary>
public sealed class IptablesExecutor(ICommandRunner runner, IptablesFlavour flavour)
{
    public IptablesFlavour Flavour => flavour;

    public async Task<IptablesSave> ReadAsync(NetworkNamespacePath netns, IEnumerable<string> tables, CancellationToken cancellationToken)
    {
        var text = new System.Text.StringBuilder();
        foreach (var table in tables)
        {
            text.Append(await runner.RunCheckedInAsync(netns, flavour.Save, ["-t", table], null, cancellationToken).ConfigureAwait(false));
        }

        return IptablesSave.Parse(text.ToString());
    }

    /// <summary>Converges the namespace to <paramref name="desired"/>; returns whether anything changed.</summary>
    public async Task<bool> ApplyAsync(NetworkNamespacePath netns, IptablesRuleset desired, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        var actual = await ReadAsync(netns, tables, cancellationToken).ConfigureAwait(false);
        return await ApplyAsync(netns, desired, actual, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Converges the namespace to <paramref name="desired"/> given what <see cref="ReadAsync"/> just returned.</summary>
    public async Task<bool> ApplyAsync(NetworkNamespacePath netns, IptablesRuleset desired, IptablesSave actual, CancellationToken cancellationToken)
    {
        var script = IptablesPlanner.Plan(desired, actual);
        if (script is null)
        {
            return false;
        }

        await runner.RunCheckedInAsync(netns, flavour.Restore, ["--noflush", "-w", "5"], script, cancellationToken).ConfigureAwait(false);
        return true;
    }
}
