using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// Keeps this node's overlays as the plan says: reads the kernel (one <c>ip -j -d addr show</c>, and the FDB and
/// neighbours of each VXLAN device), applies only the differences. Bridges and VXLAN devices live in the daemon's
/// own namespace, where the ingress sandbox's and the tasks' legs attach to them. The kernel is read again only when
/// the plan changed, at each resync, or after a failure: a pass over an unchanged state costs nothing.
/// Through <c>ip</c> and <c>bridge</c> (ArgumentList only) until rtnetlink moves into our netlink layer (issue 12).
/// </summary>
public sealed partial class OverlayNetworks(ICommandRunner runner, DaemonOptions options, ILogger<OverlayNetworks> logger)
{
    private (string Fingerprint, long At)? _applied;
    private (string Device, int Mtu)? _underlay;
    private (string Fingerprint, List<OverlayChange> Changes)? _deferred;

    /// <summary>Converges the overlays: how many changes were made, and whether links were among them (then what attaches to them is checked again).</summary>
    public async Task<(int Changes, bool Links)> ConvergeAsync(ClusterState state, CancellationToken ct)
    {
        var self = NetworkNamespacePath.Current;
        try
        {
            if (_underlay is { } known && _applied is { } applied && Stopwatch.GetElapsedTime(applied.At) < options.ResyncInterval
                && Plan(state, known.Device, known.Mtu).Fingerprint == applied.Fingerprint)
            {
                return (0, false);
            }

            _applied = null;
            _deferred = null;
            var links = OverlayKernelState.ParseLinks(await runner.RunCheckedInAsync(self, "ip", ["-j", "-d", "addr", "show"], null, ct).ConfigureAwait(false));
            var underlay = links.Values.FirstOrDefault(l => l.Ipv4.Contains(options.AdvertiseAddress))
                ?? throw new InvalidOperationException(
                    $"the advertise address {options.AdvertiseAddress} is on no interface of this namespace: the overlays' VXLAN devices send from it (--advertise-addr)");
            _underlay = (underlay.Name, underlay.Mtu);
            var plan = Plan(state, underlay.Name, underlay.Mtu);

            var fdb = new Dictionary<string, IReadOnlyList<KernelFdbEntry>>(StringComparer.Ordinal);
            var neighbours = new Dictionary<string, IReadOnlyList<KernelNeighbour>>(StringComparer.Ordinal);
            foreach (var vxlan in plan.Links.Select(l => l.Vxlan).Where(links.ContainsKey))
            {
                fdb[vxlan] = OverlayKernelState.ParseFdb(await runner.RunCheckedInAsync(self, "bridge", ["-j", "fdb", "show", "dev", vxlan], null, ct).ConfigureAwait(false));
                neighbours[vxlan] = OverlayKernelState.ParseNeighbours(await runner.RunCheckedInAsync(self, "ip", ["-j", "neigh", "show", "dev", vxlan], null, ct).ConfigureAwait(false));
            }

            var changes = OverlayDiff.Changes(plan, new OverlayKernelState(links, fdb, neighbours));
            foreach (var change in changes.Where(c => !c.Deferred))
            {
                await runner.RunCheckedInAsync(self, change.Tool, change.Arguments, null, ct).ConfigureAwait(false);
                LogChange(change.ToString());
            }

            _deferred = (plan.Fingerprint, changes.Where(c => c.Deferred).ToList());
            if (changes.Count > 0)
            {
                LogConverged(changes.Count, plan.Links.Count, plan.Peers.Count);
            }

            return (changes.Count, changes.Any(c => !c.Deferred && c.Tool == "ip" && c.Arguments[0] == "link"));
        }
        catch
        {
            _applied = null;
            throw;
        }
    }

    /// <summary>
    /// The end of a pass: removes what endpoints and networks that left still hold, now that the dataplane no longer
    /// sends them new connections. A removal that fails is logged and found again at the next read of the kernel.
    /// </summary>
    public async Task FinishAsync(CancellationToken ct)
    {
        if (_deferred is not { } deferred)
        {
            return;
        }

        _deferred = null;
        var failed = false;
        foreach (var change in deferred.Changes)
        {
            var result = await runner.RunInAsync(NetworkNamespacePath.Current, change.Tool, change.Arguments, null, ct).ConfigureAwait(false);
            if (result.ExitCode != 0)
            {
                failed = true;
                LogRemovalFailed(change.ToString(), result.Stderr.Trim());
            }
            else
            {
                LogChange(change.ToString());
            }
        }

        _applied = failed ? null : (deferred.Fingerprint, Stopwatch.GetTimestamp());
    }

    private OverlayPlan Plan(ClusterState state, string underlay, int mtu) =>
        OverlayPlanner.Plan(state, options.Node, options.AdvertiseAddress, underlay, mtu, options.Network.IngressBridge);
}
