using System.Globalization;
using Mesh.Ingress.Dataplane;
using Mesh.Ingress.Kernel.Iptables;

namespace Mesh.Ingress.Trace;

/// <summary>One real server of an IPVS virtual service as the kernel holds it (port 0: the packet keeps its port).</summary>
public sealed record IpvsRealServer(string Address, int Port, int Weight, string Method, uint ActiveConnections);

/// <summary>One IPVS fwmark virtual service: its mark, scheduler and real servers.</summary>
public sealed record IpvsVirtualService(uint FirewallMark, string Scheduler, IReadOnlyList<IpvsRealServer> RealServers);

/// <summary>
/// The ipvs dataplane's sandbox as a trace reads it: <c>iptables-save -t mangle</c> and <c>-t nat</c> of the sandbox
/// (the MARK and SNAT rules of <see cref="IpvsSandboxRules"/>) and its IPVS fwmark services, dumped over netlink.
/// </summary>
public sealed record IpvsSandboxView(string Mangle, string Nat, IReadOnlyList<IpvsVirtualService> Services)
{
    /// <summary>The mark a <c>-j MARK --set-xmark 0x101/0xffffffff</c> rule sets, or null for another target.</summary>
    public static uint? MarkOf(string rule)
    {
        if (IptablesRuleMatch.Option(rule, "-j") != "MARK" || IptablesRuleMatch.Option(rule, "--set-xmark") is not { } xmark)
        {
            return null;
        }

        var value = xmark.Split('/')[0];
        return value.StartsWith("0x", StringComparison.Ordinal)
            && uint.TryParse(value.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var mark)
            ? mark
            : null;
    }

    /// <summary>The sandbox's SNAT of what IPVS sends on (<c>-m ipvs --ipvs -j SNAT --to-source X</c>), or null.</summary>
    public (string Rule, string Address)? SourceNat()
    {
        var nat = IptablesSave.Parse(Nat);
        if (!nat.Jumps.Any(j => j.Table == "nat" && j.Chain == "POSTROUTING" && IptablesRuleMatch.Option(j.Rule, "-j") == IpvsSandboxRules.SourceNat))
        {
            return null;
        }

        foreach (var rule in nat.OwnedChains.GetValueOrDefault(("nat", IpvsSandboxRules.SourceNat)) ?? [])
        {
            if (rule.Contains("-m ipvs --ipvs", StringComparison.Ordinal) && IptablesRuleMatch.Option(rule, "-j") == "SNAT"
                && IptablesRuleMatch.Option(rule, "--to-source") is { } to)
            {
                return (rule, to);
            }
        }

        return null;
    }
}
