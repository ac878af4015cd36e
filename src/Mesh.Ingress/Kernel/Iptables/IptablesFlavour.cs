namespace Mesh.Ingress.Kernel.Iptables;

/// <summary>
/// Which iptables backend this kernel supports. Debian's default (nft) fails in kernels without
/// nf_tables' ip family (e.g. user-mode-linux), where the legacy tools still work — probe, as kube-proxy does.
/// </summary>
public sealed record IptablesFlavour(string Name, string Save, string Restore)
{
    public static IptablesFlavour Nft { get; } = new("nft", "iptables-nft-save", "iptables-nft-restore");

    public static IptablesFlavour Legacy { get; } = new("legacy", "iptables-legacy-save", "iptables-legacy-restore");

    public static async Task<IptablesFlavour> DetectAsync(ICommandRunner runner, CancellationToken cancellationToken)
    {
        foreach (var flavour in new[] { Nft, Legacy })
        {
            try
            {
                var result = await runner.RunAsync(flavour.Save, ["-t", "nat"], null, cancellationToken).ConfigureAwait(false);
                if (result.ExitCode == 0)
                {
                    return flavour;
                }
            }
            catch (CommandFailedException)
            {
                // tool missing: try the next flavour
            }
        }

        throw new InvalidOperationException("neither iptables-nft nor iptables-legacy works here: install Debian's 'iptables' package (and the kernel's nat/filter/mangle support)");
    }
}
