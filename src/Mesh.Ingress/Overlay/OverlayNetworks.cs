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
            foreach (var change in changes)
            {
                await runner.RunCheckedInAsync(self, change.Tool, change.Arguments, null, ct).ConfigureAwait(false);
                LogChange(change.ToString());
            }

            _applied = (plan.Fingerprint, Stopwatch.GetTimestamp());
            if (changes.Count > 0)
            {
                LogConverged(changes.Count, plan.Links.Count, plan.Peers.Count);
            }

            return (changes.Count, changes.Any(c => c.Tool == "ip" && c.Arguments[0] == "link"));
        }
        catch
        {
            _applied = null;
            throw;
        }
    }

    private OverlayPlan Plan(ClusterState state, string underlay, int mtu) =>
        OverlayPlanner.Plan(state, options.Node, options.AdvertiseAddress, underlay, mtu, options.Network.IngressBridge);
}
