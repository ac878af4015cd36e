using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Daemon;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// Keeps this node's overlays as the plan says: reads the kernel (links, addresses, FDB and neighbours: four rtnetlink
/// dumps), applies only the differences. Bridges and VXLAN devices live in the daemon's
/// own namespace, where the ingress sandbox's and the tasks' legs attach to them. The kernel is read again only when
/// the plan changed, at each resync, or after a failure: a pass over an unchanged state costs nothing.
/// </summary>
public sealed partial class OverlayNetworks(IOverlayKernel kernel, DaemonOptions options, ILogger<OverlayNetworks> logger, DepartedPeers? departed = null)
{
    private readonly DepartedPeers _departed = departed ?? new DepartedPeers();
    private (string Fingerprint, long At)? _applied;
    private (string Device, int Mtu)? _underlay;
    private (string Fingerprint, List<OverlayChange> Changes)? _deferred;

    /// <summary>Converges the overlays: how many changes were made, and whether links were among them (then what attaches to them is checked again).</summary>
    public Task<(int Changes, bool Links)> ConvergeAsync(ClusterState state, CancellationToken ct)
    {
        try
        {
            if (_underlay is { } known && _applied is { } applied && Stopwatch.GetElapsedTime(applied.At) < options.ResyncInterval
                && Plan(state, known.Device, known.Mtu).Fingerprint == applied.Fingerprint)
            {
                return Task.FromResult((0, false));
            }

            _applied = null;
            _deferred = null;
            ct.ThrowIfCancellationRequested();
            var read = kernel.Read();
            var links = read.Links;
            var underlay = links.Values.FirstOrDefault(l => l.Ipv4.Contains(options.AdvertiseAddress))
                ?? throw new InvalidOperationException(
                    $"the advertise address {options.AdvertiseAddress} is on no interface of this namespace: the overlays' VXLAN devices send from it (--advertise-addr)");
            _underlay = (underlay.Name, underlay.Mtu);
            _departed.Adopt(read);
            var plan = Plan(state, underlay.Name, underlay.Mtu);
            var changes = OverlayDiff.Changes(plan, read);
            foreach (var change in changes.Where(c => !c.Deferred))
            {
                kernel.Apply(change);
                LogChange(change.ToString());
            }

            _deferred = (plan.Fingerprint, changes.Where(c => c.Deferred).ToList());
            if (changes.Count > 0)
            {
                LogConverged(changes.Count, plan.Links.Count, plan.Peers.Count);
            }

            return Task.FromResult((changes.Count, changes.Any(c => !c.Deferred && c.IsLink)));
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
    public Task FinishAsync(CancellationToken ct)
    {
        if (_deferred is not { } deferred)
        {
            return Task.CompletedTask;
        }

        _deferred = null;
        var failed = false;
        foreach (var change in deferred.Changes)
        {
            ct.ThrowIfCancellationRequested();
            try
            {
                kernel.Apply(change);
                LogChange(change.ToString());
            }
            catch (Mesh.Ipvs.Netlink.NetlinkException e)
            {
                failed = true;
                LogRemovalFailed(change.ToString(), e.Message);
            }
        }

        _applied = failed ? null : (deferred.Fingerprint, Stopwatch.GetTimestamp());
        return Task.CompletedTask;
    }

    /// <summary>The state's plan, with the remote endpoints that left it lately still in (<see cref="DepartedPeers"/>).</summary>
    private OverlayPlan Plan(ClusterState state, string underlay, int mtu) =>
        _departed.Extend(OverlayPlanner.Plan(state, options.Node, options.AdvertiseAddress, underlay, mtu, options.Network.IngressBridge), () => AddressesInUse(state));

    private static HashSet<string> AddressesInUse(ClusterState state) =>
        state.Tasks.SelectMany(t => t.Addresses.Values).Concat(state.Nodes.Select(n => n.IngressSandboxIp)).OfType<string>().ToHashSet(StringComparer.Ordinal);
}
