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
        var refusals = new List<string>();
        var denied = false;
        foreach (var flavour in new[] { Nft, Legacy })
        {
            try
            {
                var result = await runner.RunAsync(flavour.Save, ["-t", "nat"], null, cancellationToken).ConfigureAwait(false);
                if (result.ExitCode == 0)
                {
                    return flavour;
                }

                var said = result.Stderr.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? $"exit {result.ExitCode}";
                denied |= said.Contains("Permission denied", StringComparison.Ordinal);
                refusals.Add($"{flavour.Save}: {said}");
            }
            catch (CommandFailedException)
            {
                refusals.Add($"{flavour.Save}: not installed"); // tool missing: try the next flavour
            }
        }

        // Both tools refusing with EPERM is a missing capability, not a missing package: say which one.
        throw new InvalidOperationException(denied
            ? $"this process may not read the kernel's firewall tables: it needs CAP_NET_ADMIN (run as root or grant it, as packaging/mesh.service does) ({string.Join("; ", refusals)})"
            : $"neither iptables-nft nor iptables-legacy works here: install Debian's 'iptables' package (and the kernel's nat/filter/mangle support) ({string.Join("; ", refusals)})");
    }
}
