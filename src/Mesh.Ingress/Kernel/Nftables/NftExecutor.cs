using System.Diagnostics;

namespace Mesh.Ingress.Kernel.Nftables;

/// <summary>
/// Reads a table and applies scripts through <c>nft</c>; one <c>nft -f -</c> run is one atomic transaction.
/// After a successful transaction it trusts what it wrote for <paramref name="trustFor"/> instead of listing the
/// table again: at thousands of services the listing costs seconds, the change itself milliseconds. A failure,
/// or the trust running out (the periodic resync), makes it read the kernel again, which repairs any drift.
/// </summary>
public sealed class NftExecutor(ICommandRunner runner, TimeSpan trustFor)
{
    private readonly Dictionary<(string Netns, string Family, string Table), (NftTableState State, long Until)> _written = [];
    private readonly Lock _lock = new();

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
        var actual = Trusted(key) ?? await ReadAsync(netns, family, table, cancellationToken).ConfigureAwait(false);
        var script = desired is not null
            ? NftPlanner.Plan(desired, actual)
            : actual.Exists ? $"delete table {family} {table}\n" : null;
        if (script is null)
        {
            return false;
        }

        try
        {
            await ApplyAsync(netns, script, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Forget(key);
            throw;
        }

        lock (_lock)
        {
            _written[key] = (desired is null ? NftTableState.Missing : NftPlanner.Expected(desired), Stopwatch.GetTimestamp() + (long)(trustFor.TotalSeconds * Stopwatch.Frequency));
        }

        return true;
    }

    private NftTableState? Trusted((string, string, string) key)
    {
        lock (_lock)
        {
            if (_written.TryGetValue(key, out var entry) && Stopwatch.GetTimestamp() < entry.Until)
            {
                return entry.State;
            }

            _written.Remove(key);
            return null;
        }
    }

    /// <summary>Drops what was written into <paramref name="netns"/> (it is gone, and a namespace of the same name may come).</summary>
    public void Forget(NetworkNamespacePath netns)
    {
        lock (_lock)
        {
            foreach (var key in _written.Keys.Where(k => k.Netns == (netns.Path ?? "")).ToList())
            {
                _written.Remove(key);
            }
        }
    }

    private void Forget((string, string, string) key)
    {
        lock (_lock)
        {
            _written.Remove(key);
        }
    }
}
