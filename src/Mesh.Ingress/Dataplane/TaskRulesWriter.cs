using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Converges a task namespace's ingress and DNS rules (packet walk step 6) for the dataplane in use. ipvs:
/// <see cref="TaskRules"/> through iptables-restore, as before. nftables: <see cref="TaskIngressTable"/> through nf_tables
/// netlink, no process. The first time a namespace is seen after the daemon starts, its DNS listener ports are read back
/// from the kernel (so a restarted daemon binds the same ones) and Mesh's iptables chains of a version before the table
/// are removed: that one look starts a process only when such chains are there (iptables-nft, seen over netlink) or may
/// be (a legacy nat/filter table exists in the namespace).
/// </summary>
public sealed partial class TaskRulesWriter(IptablesExecutor iptables, NfTablesExecutor nft, bool nftables, ICommandRunner runner, ILogger<TaskRulesWriter> logger)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Applied> _applied = new(StringComparer.Ordinal);

    /// <summary>Mesh's iptables chains of a version before the table, found when a namespace was first seen, to remove.</summary>
    private readonly Dictionary<string, IptablesSave> _legacy = new(StringComparer.Ordinal);

    /// <summary>
    /// The DNS listener ports the namespace's rules point at, so the task's listeners are bound on them before the plan
    /// is made (a restarted daemon keeps a task's ports). The first time a namespace is seen they are read back from the
    /// kernel, and with nftables any iptables chains Mesh left there are read too, for <see cref="ConvergeAsync"/> to remove.
    /// </summary>
    public async Task<DnsPorts?> ReadDnsPortsAsync(NetworkNamespacePath netns, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(netns);
        var path = netns.Path ?? throw new ArgumentException("a task's namespace has a path", nameof(netns));
        if (!nftables)
        {
            return TaskRules.DnsPortsIn(await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false));
        }

        lock (_lock)
        {
            if (_applied.TryGetValue(path, out var known))
            {
                return known.Dns;
            }
        }

        IptablesSave? old = null;
        var presence = IptablesPresence.Read(path);
        if (presence.NftHoldsMeshChains("nat") || presence.NftHoldsMeshChains("filter") || presence.LegacyMayHoldMeshChains)
        {
            old = await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false);
            lock (_lock)
            {
                _legacy[path] = old;
            }
        }

        return DnsPortsInTable(path) ?? (old is null ? null : TaskRules.DnsPortsIn(old));
    }

    /// <summary>Converges the task's ingress and DNS rules in <paramref name="netns"/> to <paramref name="desired"/>.</summary>
    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, TaskIngress desired, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(desired);
        var path = netns.Path ?? throw new ArgumentException("a task's namespace has a path", nameof(netns));
        bool seen;
        IptablesSave? old;
        lock (_lock)
        {
            seen = _applied.ContainsKey(path);
            _legacy.Remove(path, out old);
        }

        if (!nftables)
        {
            var changed = !seen && await nft.ConvergeAsync(netns, null, Family.Ip, TaskIngressTable.Name, ct).ConfigureAwait(false);
            var actual = await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false);
            changed |= await iptables.ApplyAsync(netns, desired.Rules, actual, TaskRules.Tables, ct).ConfigureAwait(false);
            Remember(path, new Applied(desired.Dns, null, IptablesRuleset.Empty));
            return changed;
        }

        var wrote = await nft.ConvergeAsync(netns, desired.Table, Family.Ip, TaskIngressTable.Name, ct).ConfigureAwait(false);
        if (old is not null && await iptables.ApplyAsync(netns, IptablesRuleset.Empty, old, TaskRules.Tables, ct).ConfigureAwait(false))
        {
            wrote = true;
            LogIptablesRemoved(path);
        }

        Remember(path, new Applied(desired.Dns, desired.Table, desired.Rules));
        return wrote;
    }

    /// <summary>Forgets a namespace that is gone (a new one at the same path is looked at afresh).</summary>
    public void Forget(NetworkNamespacePath netns)
    {
        ArgumentNullException.ThrowIfNull(netns);
        iptables.Forget(netns);
        lock (_lock)
        {
            _applied.Remove(netns.Path ?? "");
            _legacy.Remove(netns.Path ?? "");
        }
    }

    /// <summary>
    /// The task's nat and filter rules in iptables-save's format for <c>mesh trace</c>, or null when unreadable. nftables:
    /// the iptables equivalent of the table last written, when the kernel's table holds exactly it.
    /// </summary>
    public async Task<string?> ReadForTraceAsync(NetworkNamespacePath netns, IEnumerable<string> tables, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(netns);
        if (!nftables)
        {
            var result = await runner.RunInAsync(netns, iptables.Flavour.Save, [], null, ct).ConfigureAwait(false);
            return result.ExitCode != 0 ? null : string.Concat(tables.Select(table => IptablesSaveText.Section(result.Stdout, table)));
        }

        Applied? applied;
        lock (_lock)
        {
            applied = _applied.GetValueOrDefault(netns.Path ?? "");
        }

        try
        {
            return applied?.Table is { } desired && HostRulesWriter.KernelHolds(netns.Path, desired) ? IptablesSaveText.Render(applied.View) : null;
        }
        catch (Exception e) when (e is NetlinkException or NetworkNamespaceException)
        {
            return null; // the namespace went away: the trace says its rules could not be read
        }
    }

    private static DnsPorts? DnsPortsInTable(string path)
    {
        try
        {
            using var handle = NfTablesHandle.Open(path);
            return handle.GetTable(Family.Ip, TaskIngressTable.Name) is null ? null : TaskIngressTable.DnsPortsIn(handle.GetRules(Family.Ip, TaskIngressTable.Name, TaskIngressTable.DnsOutputChain));
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENOENT or Errno.EAFNOSUPPORT or Errno.EPROTONOSUPPORT)
        {
            return null;
        }
    }

    private void Remember(string path, Applied applied)
    {
        lock (_lock)
        {
            _applied[path] = applied;
        }
    }

    /// <summary>What was last written to a namespace: the DNS ports, the table (nftables) and its iptables equivalent.</summary>
    private sealed record Applied(DnsPorts? Dns, NftDesiredTable? Table, IptablesRuleset View);
}
