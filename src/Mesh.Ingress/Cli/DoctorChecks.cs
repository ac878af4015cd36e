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

    /// <summary>Shown for information (the lab, mesh trace): no dataplane fails without it.</summary>
    None,
}

/// <summary>One line of <c>mesh doctor</c>: what was tried, whether it worked, what failed, and what to do.</summary>
public sealed record DoctorCheck(string What, bool Ok, DoctorNeed Need, string? Failure = null, string? Fix = null);

/// <summary>
/// What <c>mesh doctor</c> checks. Kernel features are tried, not looked up: each link type the lab and the daemon
/// create (veth, bridge, VXLAN) is made inside a throw-away network namespace (<c>unshare --net</c>: it and everything
/// in it vanish when the probe exits), and nf_tables is tried over netlink as the daemon uses it
/// (<see cref="NfTablesProbe"/>), so a module that autoloads counts as there and one that is missing says why. Each
/// dataplane's binaries are looked up and said (present or not, and whether the chosen dataplane needs them). The exit code is 0 when the chosen dataplane has all it needs;
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
            Binary("iproute2 (ip): the lab and the link probes below; no dataplane runs it", DoctorNeed.None, "ip", "apt-get install iproute2"),
            await TryAsync("network namespaces (unshare --net)", DoctorNeed.Always, "unshare", ["--net", "true"], "a kernel with CONFIG_NET_NS, and root", ct),
            await InNamespaceAsync("veth", ["ip", "link", "add", Probe, "type", "veth", "peer", "name", "mesh-doctor1"], "modprobe veth (CONFIG_VETH)", ct),
            await InNamespaceAsync("bridge", ["ip", "link", "add", Probe, "type", "bridge"], "modprobe bridge (CONFIG_BRIDGE)", ct),
            await InNamespaceAsync("VXLAN", ["ip", "link", "add", Probe, "type", "vxlan", "id", "4096", "dstport", "4789"], "modprobe vxlan (CONFIG_VXLAN)", ct),
            new($"IPVS: {ipvs.Reason}", ipvs.Available, DoctorNeed.Ipvs, Fix: "modprobe ip_vs, or use the nftables dataplane (auto does)"),
            NfTablesProbe.Check(),
        };
        checks.AddRange(await BinariesAsync(ct));

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
        DoctorNeed.None => false,
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

    /// <summary>
    /// The binaries each dataplane runs. ipvs: iptables-restore/-save (its DNAT, MARK, SNAT and task rules) and nsenter
    /// (to run them in other namespaces). nftables: none, unless this node's iptables FORWARD may drop (Docker's policy:
    /// Mesh's accepts must then be in iptables) or Mesh rules of a version before the nf_tables tables are still there.
    /// </summary>
    private async Task<IReadOnlyList<DoctorCheck>> BinariesAsync(CancellationToken ct)
    {
        var presence = IptablesPresence.Read(null);
        var why = presence.ForwardMayDrop ? "iptables' filter FORWARD may drop (policy DROP, or a legacy filter table), so Mesh's accepts go there"
            : presence.NftHoldsMeshChains("nat") || presence.NftHoldsMeshChains("filter") || presence.LegacyMayHoldMeshChains ? "Mesh's iptables rules of an older version are to be removed"
            : null;
        var checks = new List<DoctorCheck> { new("nftables dataplane binaries: none (nf_tables, links and sysctls over netlink and /proc)", true, DoctorNeed.Nftables) };
        DoctorCheck iptables;
        try
        {
            var flavour = await IptablesFlavour.DetectAsync(runner, ct).ConfigureAwait(false);
            iptables = new DoctorCheck($"{flavour.Restore}, {flavour.Save} ({flavour.Name} flavour works): {Users(why)}", true, why is null ? DoctorNeed.Ipvs : DoctorNeed.Always);
        }
        catch (InvalidOperationException e)
        {
            iptables = new DoctorCheck($"iptables-restore, iptables-save: {Users(why)}", false, why is null ? DoctorNeed.Ipvs : DoctorNeed.Always, Fix: e.Message);
        }

        checks.Add(iptables);
        checks.Add(Binary($"nsenter: {Users(why)}, in other namespaces", why is null ? DoctorNeed.Ipvs : DoctorNeed.Always, "nsenter", "apt-get install util-linux"));
        checks.Add(Binary("nft: mesh trace reads the nftables sandbox with it; no dataplane runs it", DoctorNeed.None, "nft", "apt-get install nftables"));
        return checks;
    }

    private static string Users(string? nftablesReason) =>
        nftablesReason is null ? "the ipvs dataplane" : $"the ipvs dataplane, and the nftables one here ({nftablesReason})";

    /// <summary>Whether an executable of that name is on PATH (looked up, not run).</summary>
    private static DoctorCheck Binary(string what, DoctorNeed need, string name, string fix)
    {
        var found = (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin")
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);
        return found is null ? new DoctorCheck(what, false, need, "not found on PATH", fix) : new DoctorCheck(what, true, need);
    }

    private static string? FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
}
