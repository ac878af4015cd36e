using Mesh.Ingress.Kernel;
using Mesh.Ingress.Kernel.Iptables;
using Mesh.Ingress.Planning;
using Mesh.Ipvs;
using Mesh.Ipvs.Netlink;
using Mesh.Ipvs.Netlink.NfTables;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Backend choice with IPVS, as Docker's routing mesh does it: iptables marks (atomic <c>iptables-restore
/// --noflush</c> of Mesh's own chains), IPVS fwmark services over generic netlink (diffed against a dump,
/// changed in one batch), and the sandbox's IPVS sysctls and timeouts. Idempotent: a pass over an unchanged
/// kernel changes nothing; a restarted daemon converges what it finds.
/// </summary>
/// <param name="time">The clock drain periods are measured on (the system's unless a test steps it).</param>
public sealed partial class IpvsDataplane(IptablesExecutor iptables, IngressSandbox sandbox, IpvsOptions options, ILogger<IpvsDataplane> logger, TimeProvider? time = null) : IDataplane
{
    private readonly Dictionary<string, IpvsDrainTracker> _drains = new(StringComparer.Ordinal);
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly long _origin = (time ?? TimeProvider.System).GetTimestamp();
    private readonly Lock _lock = new();

    public string Name => "ipvs";

    public async Task<bool> ConvergeSandboxAsync(BackendChoice desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(desired);
        var netns = sandbox.Netns.Path!;
        var changed = SetSysctls(netns, desired.Sysctls);
        changed |= SetTimeouts(netns);
        changed |= Converge(netns, desired.Services);
        changed |= await iptables.ApplyAsync(sandbox.Netns, desired.Marks, IpvsSandboxRules.Tables, cancellationToken).ConfigureAwait(false);
        return changed;
    }

    public async Task<bool> ConvergeTaskAsync(NetworkNamespacePath netns, BackendChoice desired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(netns);
        ArgumentNullException.ThrowIfNull(desired);
        var path = netns.Path ?? throw new ArgumentException("a task's namespace must be given by path", nameof(netns));
        var changed = false;
        if (desired.Services.Count > 0)
        {
            changed |= SetSysctls(path, desired.Sysctls);
            changed |= SetTimeouts(path);
        }

        // Marks after the services exist, and removed before the services go.
        if (desired.Services.Count > 0)
        {
            changed |= Converge(path, desired.Services);
            changed |= await iptables.ApplyAsync(netns, desired.Marks, IpvsTaskRules.Tables, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            // Nothing wanted: only marks Mesh left earlier could be there to remove, and only in a mangle table that exists.
            if (MangleMayHoldMarks(path))
            {
                changed |= await iptables.ApplyAsync(netns, desired.Marks, IpvsTaskRules.Tables, cancellationToken).ConfigureAwait(false);
            }

            changed |= Converge(path, []);
        }

        if (desired.Services.Count == 0)
        {
            // Nothing of Mesh's left to drain here (a removed task's namespace, or one on no VIP network).
            lock (_lock)
            {
                _drains.Remove(path);
            }
        }

        return changed;
    }

    public async Task<bool> RemoveFromSandboxAsync(CancellationToken cancellationToken)
    {
        // Marks first, so nothing is steered to services about to go.
        var changed = await iptables.ApplyAsync(sandbox.Netns, IptablesRuleset.Empty, IpvsSandboxRules.Tables, cancellationToken).ConfigureAwait(false);
        changed |= Converge(sandbox.Netns.Path!, []);
        return changed;
    }

    /// <summary>
    /// Whether the namespace has a mangle table in the iptables flavour in use: the only place Mesh's east-west marks can
    /// be. Asked without a process (x_tables names its tables in /proc; iptables-nft's are nf_tables tables): a task on no
    /// VIP network then costs no iptables-save at each resync (seconds under user-mode-linux), and iptables-legacy-save
    /// no longer instantiates an empty mangle table there, whose hooks would see every packet of the task.
    /// </summary>
    private bool MangleMayHoldMarks(string netns)
    {
        if (iptables.Flavour == IptablesFlavour.Legacy)
        {
            return IptablesPresence.Read(netns).LegacyTables.Contains(IpvsTaskRules.Tables[0]);
        }

        try
        {
            using var nft = NfTablesHandle.Open(netns);
            return nft.GetTable(Family.Ip, IpvsTaskRules.Tables[0]) is not null;
        }
        catch (NetlinkException e) when (e.Errno is Errno.EAFNOSUPPORT or Errno.EPROTONOSUPPORT or Errno.EOPNOTSUPP)
        {
            return false; // no nf_tables here: no iptables-nft table either
        }
    }

    /// <summary>Dumps the namespace's IPVS, diffs it against <paramref name="desired"/> and applies the difference in one batch.</summary>
    private bool Converge(string netns, IReadOnlyList<IpvsDesiredService> desired)
    {
        using var ipvs = IpvsHandle.Open(netns);
        var actual = ipvs.GetServices().Where(s => s.IsFirewallMark).Select(s => new IpvsActualService(s, ipvs.GetDestinations(s))).ToArray();
        IReadOnlyList<IpvsChange> changes;
        lock (_lock)
        {
            if (!_drains.TryGetValue(netns, out var drains))
            {
                _drains[netns] = drains = new IpvsDrainTracker();
            }

            changes = IpvsDiff.Plan(desired, actual, s => s.IsFirewallMark, drains, _time.GetElapsedTime(_origin), options.DrainPeriod);
        }

        if (changes.Count == 0)
        {
            return false;
        }

        ipvs.Apply(IpvsDiff.ToBatch(changes));
        if (logger.IsEnabled(LogLevel.Debug))
        {
            LogIpvsChanged(netns, string.Join("; ", changes));
        }

        return true;
    }

    private bool SetTimeouts(string netns)
    {
        if (options.Timeouts is not { } wanted)
        {
            return false;
        }

        using var ipvs = IpvsHandle.Open(netns);
        var have = ipvs.GetTimeouts();
        if ((wanted.TcpSeconds == 0 || wanted.TcpSeconds == have.TcpSeconds)
            && (wanted.TcpFinSeconds == 0 || wanted.TcpFinSeconds == have.TcpFinSeconds)
            && (wanted.UdpSeconds == 0 || wanted.UdpSeconds == have.UdpSeconds))
        {
            return false;
        }

        ipvs.SetTimeouts(wanted);
        return true;
    }

    /// <summary>Reads and, where different, writes /proc/sys from a thread inside the namespace (no process per sysctl).</summary>
    private static bool SetSysctls(string netns, IReadOnlyList<(string Key, string Value)> sysctls) => NetworkNamespace.Run(netns, () =>
    {
        var changed = false;
        foreach (var (key, value) in sysctls)
        {
            var file = "/proc/sys/" + key.Replace('.', '/');
            if (!File.Exists(file))
            {
                throw new InvalidOperationException($"{key} does not exist in {netns}: is the ip_vs module loaded?");
            }

            if (File.ReadAllText(file).Trim() != value)
            {
                File.WriteAllText(file, value);
                changed = true;
            }
        }

        return changed;
    });

    [LoggerMessage(Level = LogLevel.Debug, Message = "IPVS in {Netns}: {Changes}")]
    private partial void LogIpvsChanged(string netns, string changes);
}
