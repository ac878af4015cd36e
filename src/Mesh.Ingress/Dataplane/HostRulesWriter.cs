using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs.Netlink.NfTables;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Converges the node's own rules (packet walk step 1) for the dataplane in use. ipvs: <see cref="HostRules"/> through
/// iptables-restore, as before. nftables: <see cref="HostNatTable"/> through nf_tables netlink, no process; iptables is
/// touched only (a) while its filter FORWARD may drop (<see cref="IptablesPresence.ForwardMayDrop"/>, e.g. Docker's DROP
/// policy): then Mesh's FORWARD accepts stay there, since no accept elsewhere can override that DROP; and (b) when a node
/// upgraded from the iptables version still holds its <c>MESH-*</c> chains, which are removed (checked over netlink
/// every pass for iptables-nft; once per daemon start for iptables-legacy, whose tables netlink cannot see).
/// </summary>
public sealed partial class HostRulesWriter(
    IptablesExecutor iptables,
    NfTablesExecutor nft,
    bool nftables,
    ICommandRunner runner,
    ILogger<HostRulesWriter> logger,
    NetworkNamespacePath? host = null) : INamespaceExecutor<HostPlan>
{
    /// <summary>The node's namespace: the daemon's own (tests give a named one).</summary>
    private readonly NetworkNamespacePath _here = host ?? NetworkNamespacePath.Current;

    private readonly Lock _lock = new();
    private Applied? _applied;
    private bool _legacyChecked;
    private bool _otherRemoved;

    /// <summary>Whether this node runs the nftables dataplane (its host rules are <see cref="HostNatTable"/>).</summary>
    public bool Nftables => nftables;

    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, HostPlan desired, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var rules = desired.Rules;
        var here = netns;
        if (!nftables)
        {
            var removed = false;
            if (!_otherRemoved)
            {
                // A node switched from the nftables dataplane: its table would DNAT beside iptables. No nf_tables: nothing to find.
                removed = await nft.ConvergeAsync(here, null, Family.Ip, HostNatTable.Name, ct).ConfigureAwait(false);
                _otherRemoved = true;
            }

            return await iptables.ApplyAsync(here, rules, HostRules.Tables, ct).ConfigureAwait(false) | removed;
        }

        var table = desired.NatTable ?? throw new ArgumentException("the nftables dataplane's host plan has its nat table", nameof(desired));
        var changed = await nft.ConvergeAsync(here, table, Family.Ip, HostNatTable.Name, ct).ConfigureAwait(false);
        var presence = IptablesPresence.Read(here.Path);
        var filter = presence.ForwardMayDrop ? IptablesSaveText.Only(rules, "filter") : IptablesRuleset.Empty;
        var upgrade = presence.NftHoldsMeshChains("nat") || (!presence.ForwardMayDrop && presence.NftHoldsMeshChains("filter"))
            || (presence.LegacyMayHoldMeshChains && !_legacyChecked);
        if (presence.ForwardMayDrop || upgrade)
        {
            // After the table above, so the published ports stay DNATed while the old chains go.
            if (await iptables.ApplyAsync(here, filter, HostRules.Tables, ct).ConfigureAwait(false))
            {
                changed = true;
                if (upgrade)
                {
                    LogIptablesRemoved("the host", presence.ForwardMayDrop);
                }
            }
        }

        _legacyChecked = true;
        lock (_lock)
        {
            _applied = new Applied(IptablesSaveText.Only(rules, "nat"), filter, table);
        }

        return changed;
    }

    /// <summary>
    /// The host's nat and filter rules in iptables-save's format for <c>mesh trace</c>. nftables: the nat equivalent of
    /// the table last written, shown only when the kernel's table holds exactly it (its chains' content hashes), else
    /// nothing; the filter from iptables when Mesh's accepts are there, else FORWARD's policy.
    /// </summary>
    public async Task<(string Nat, string Filter)> ReadForTraceAsync(CancellationToken ct)
    {
        var here = _here;
        if (!nftables)
        {
            var save = await runner.RunCheckedInAsync(here, iptables.Flavour.Save, [], null, ct).ConfigureAwait(false);
            return (IptablesSaveText.Section(save, "nat"), IptablesSaveText.Section(save, "filter"));
        }

        Applied? applied;
        lock (_lock)
        {
            applied = _applied;
        }

        var nat = applied is not null && KernelHolds(_here.Path, applied.Table) ? IptablesSaveText.Render(applied.Nat) : "";
        var presence = IptablesPresence.Read(_here.Path);
        var filter = presence.ForwardMayDrop
            ? IptablesSaveText.Section(await runner.RunCheckedInAsync(here, iptables.Flavour.Save, [], null, ct).ConfigureAwait(false), "filter")
            : IptablesSaveText.Render(IptablesRuleset.Empty, [("filter", "FORWARD", presence.NftForwardPolicy ?? "ACCEPT")]);
        return (nat, filter);
    }

    /// <summary>Whether the namespace's table holds exactly <paramref name="desired"/> (every chain's rules by content hash).</summary>
    internal static bool KernelHolds(string? netnsPath, NftDesiredTable desired)
    {
        using var handle = NfTablesHandle.Open(netnsPath);
        var actual = NftTableState.Read(handle, desired.Family, desired.Name);
        var expected = NftPlanner.Expected(desired);
        return actual.Exists
            && actual.Chains.Count == expected.Chains.Count
            && expected.Chains.All(c => actual.Chains.TryGetValue(c.Key, out var have) && have.SequenceEqual(c.Value, StringComparer.Ordinal));
    }

    private sealed record Applied(IptablesRuleset Nat, IptablesRuleset Filter, NftDesiredTable Table);
}
