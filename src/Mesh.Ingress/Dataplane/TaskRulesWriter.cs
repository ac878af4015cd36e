using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Kernel.Nftables;
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

    /// <summary>
    /// Converges the task's rules in <paramref name="netns"/>. <paramref name="ensureDns"/> starts (or keeps) the task's
    /// DNS listeners, given the ports the kernel's rules point at when known, and returns theirs.
    /// </summary>
    public async Task<bool> ConvergeAsync(ServiceTask task, ClusterService service, NetworkNamespacePath netns, Func<DnsPorts?, DnsPorts?> ensureDns, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(ensureDns);
        var path = netns.Path ?? throw new ArgumentException("a task's namespace has a path", nameof(netns));
        Applied? known;
        lock (_lock)
        {
            known = _applied.GetValueOrDefault(path);
        }

        if (!nftables)
        {
            var changed = known is null && await nft.ConvergeAsync(netns, null, Family.Ip, TaskIngressTable.Name, ct).ConfigureAwait(false);
            var actual = await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false);
            var dns = ensureDns(TaskRules.DnsPortsIn(actual));
            changed |= await iptables.ApplyAsync(netns, TaskRules.Build(task, service, dns), actual, TaskRules.Tables, ct).ConfigureAwait(false);
            Remember(path, new Applied(dns, null, IptablesRuleset.Empty));
            return changed;
        }

        IptablesSave? old = null;
        var hint = known?.Dns;
        if (known is null)
        {
            var presence = IptablesPresence.Read(path);
            if (presence.NftHoldsMeshChains("nat") || presence.NftHoldsMeshChains("filter") || presence.LegacyMayHoldMeshChains)
            {
                old = await iptables.ReadAsync(netns, TaskRules.Tables, ct).ConfigureAwait(false);
            }

            hint = DnsPortsInTable(path) ?? (old is null ? null : TaskRules.DnsPortsIn(old));
        }

        var ports = ensureDns(hint);
        var table = TaskIngressTable.Build(task, service, ports);
        var wrote = await nft.ConvergeAsync(netns, table, Family.Ip, TaskIngressTable.Name, ct).ConfigureAwait(false);
        if (old is not null && await iptables.ApplyAsync(netns, IptablesRuleset.Empty, old, TaskRules.Tables, ct).ConfigureAwait(false))
        {
            wrote = true;
            LogIptablesRemoved(task.Name, path);
        }

        Remember(path, new Applied(ports, table, TaskRules.Build(task, service, ports)));
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
            var text = new System.Text.StringBuilder();
            foreach (var table in tables)
            {
                var result = await runner.RunInAsync(netns, iptables.Flavour.Save, ["-t", table], null, ct).ConfigureAwait(false);
                if (result.ExitCode != 0)
                {
                    return null;
                }

                text.Append(result.Stdout);
            }

            return text.ToString();
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
