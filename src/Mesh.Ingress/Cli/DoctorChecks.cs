using Mesh.Ingress.Daemon;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Cli;

/// <summary>Which dataplanes need a feature: every one, or only one of them.</summary>
public enum DoctorNeed
{
    Always,
    Ipvs,
    Nftables,
}

/// <summary>One line of <c>mesh doctor</c>: what was tried, whether it worked, what failed, and what to do.</summary>
public sealed record DoctorCheck(string What, bool Ok, DoctorNeed Need, string? Failure = null, string? Fix = null);

/// <summary>
/// What <c>mesh doctor</c> checks. Kernel features are tried, not looked up: each link type the lab and the daemon
/// create (veth, bridge, VXLAN) and an nftables table are made inside a throw-away network namespace
/// (<c>unshare --net</c>: it and everything in it vanish when the probe exits), so a module that autoloads counts
/// as there and one that is missing says why. The exit code is 0 when the chosen dataplane has all it needs;
/// what only the other dataplane needs is shown but does not fail it.
/// </summary>
public sealed class DoctorChecks(ICommandRunner runner, bool privileged, (bool Available, string Reason) ipvs)
{
    private const string Probe = "mesh-doctor0";

    public async Task<(IReadOnlyList<DoctorCheck> Checks, DataplaneChoice Dataplane, string Reason)> RunAsync(DataplaneChoice requested, CancellationToken ct)
    {
        var checks = new List<DoctorCheck>
        {
            new("running as root", privileged, DoctorNeed.Always, Fix: "run as root (network namespaces and rules need CAP_NET_ADMIN)"),
            new("network stack in /proc/sys/net", Directory.Exists("/proc/sys/net/ipv4"), DoctorNeed.Always, Fix: "mount /proc"),
            await TryAsync("iproute2 (ip)", DoctorNeed.Always, "ip", ["-V"], "apt-get install iproute2", ct),
            await TryAsync("nsenter", DoctorNeed.Always, "nsenter", ["--version"], "apt-get install util-linux", ct),
            await TryAsync("network namespaces (unshare --net)", DoctorNeed.Always, "unshare", ["--net", "true"], "a kernel with CONFIG_NET_NS, and root", ct),
            await InNamespaceAsync("veth", ["ip", "link", "add", Probe, "type", "veth", "peer", "name", "mesh-doctor1"], "modprobe veth (CONFIG_VETH)", ct),
            await InNamespaceAsync("bridge", ["ip", "link", "add", Probe, "type", "bridge"], "modprobe bridge (CONFIG_BRIDGE)", ct),
            await InNamespaceAsync("VXLAN", ["ip", "link", "add", Probe, "type", "vxlan", "id", "4096", "dstport", "4789"], "modprobe vxlan (CONFIG_VXLAN)", ct),
            await IptablesAsync(ct),
            new($"IPVS: {ipvs.Reason}", ipvs.Available, DoctorNeed.Ipvs, Fix: "modprobe ip_vs, or use the nftables dataplane (auto does)"),
            await InNamespaceAsync("nf_tables", ["nft", "add", "table", "ip", "mesh-doctor"], "apt-get install nftables, and a kernel with CONFIG_NF_TABLES (nf_tables, nft_nat)", ct, DoctorNeed.Nftables),
        };

        var (choice, reason) = requested == DataplaneChoice.Ipvs && !ipvs.Available
            ? (DataplaneChoice.Ipvs, "requested with --dataplane ipvs, but this kernel has no IPVS")
            : DataplaneSelector.Resolve(requested, ipvs.Available);
        return (checks, choice, reason);
    }

    /// <summary>Whether <paramref name="check"/> must pass for <paramref name="dataplane"/> to work.</summary>
    public static bool Needed(DoctorCheck check, DataplaneChoice dataplane) => check.Need switch
    {
        DoctorNeed.Ipvs => dataplane == DataplaneChoice.Ipvs,
        DoctorNeed.Nftables => dataplane == DataplaneChoice.Nftables,
        _ => true,
    };

    /// <summary>Writes the report; returns the exit code: 0 when everything the chosen dataplane needs works, else 1.</summary>
    public static int Report(TextWriter output, IReadOnlyList<DoctorCheck> checks, DataplaneChoice dataplane, string reason)
    {
        var name = dataplane.ToString().ToLowerInvariant();
        var failed = 0;
        foreach (var check in checks)
        {
            var needed = Needed(check, dataplane);
            var status = check.Ok ? "ok  " : needed ? "MISS" : "no  ";
            var line = $"{status}  {check.What}";
            if (!check.Ok)
            {
                line += check.Failure is { } why ? $": {why}" : "";
                line += needed ? $"  → {check.Fix}" : $"  (not needed by the {name} dataplane)";
                failed += needed ? 1 : 0;
            }

            output.WriteLine(line);
        }

        output.WriteLine($"dataplane: {name} ({reason})");
        output.WriteLine(failed == 0
            ? $"The {name} dataplane has everything it needs."
            : $"The {name} dataplane cannot work here: {failed} check(s) above failed.");
        return failed == 0 ? 0 : 1;
    }

    private Task<DoctorCheck> InNamespaceAsync(string what, string[] command, string fix, CancellationToken ct, DoctorNeed need = DoctorNeed.Always) =>
        TryAsync($"{what} ({string.Join(' ', command)} in a throw-away netns)", need, "unshare", ["--net", "--", .. command], fix, ct);

    private async Task<DoctorCheck> TryAsync(string what, DoctorNeed need, string file, string[] arguments, string fix, CancellationToken ct)
    {
        try
        {
            var result = await runner.RunAsync(file, arguments, null, ct).ConfigureAwait(false);
            return result.ExitCode == 0
                ? new DoctorCheck(what, true, need)
                : new DoctorCheck(what, false, need, FirstLine(result.Stderr) ?? $"exit {result.ExitCode}", fix);
        }
        catch (CommandFailedException e)
        {
            return new DoctorCheck(what, false, need, FirstLine(e.Message), fix);
        }
    }

    private async Task<DoctorCheck> IptablesAsync(CancellationToken ct)
    {
        try
        {
            var flavour = await IptablesFlavour.DetectAsync(runner, ct).ConfigureAwait(false);
            return new DoctorCheck($"iptables ({flavour.Name} flavour works)", true, DoctorNeed.Always);
        }
        catch (InvalidOperationException e)
        {
            return new DoctorCheck("iptables", false, DoctorNeed.Always, Fix: e.Message);
        }
    }

    private static string? FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
}
