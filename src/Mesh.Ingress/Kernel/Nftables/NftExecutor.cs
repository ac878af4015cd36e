namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>Reads a table and applies scripts through <c>nft</c>; one <c>nft -f -</c> run is one atomic transaction.</summary>
public sealed class NftExecutor(ICommandRunner runner)
{
    public async Task<NftTableState> ReadAsync(NetworkNamespacePath netns, string family, string table, CancellationToken cancellationToken)
    {
        var result = await runner.RunInAsync(netns, "nft", ["-j", "list", "table", family, table], null, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            // "No such file or directory": the table does not exist yet.
            return result.Stderr.Contains("No such file", StringComparison.Ordinal)
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
        var actual = await ReadAsync(netns, family, table, cancellationToken).ConfigureAwait(false);
        var script = desired is not null
            ? NftPlanner.Plan(desired, actual)
            : actual.Exists ? $"delete table {family} {table}\n" : null;
        if (script is null)
        {
            return false;
        }

        await ApplyAsync(netns, script, cancellationToken).ConfigureAwait(false);
        return true;
    }
}
