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
}
