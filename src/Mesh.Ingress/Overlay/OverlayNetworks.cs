using System.Diagnostics;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Mesh.Ingress.Planning;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Overlay;

/// <summary>
/// Converges this node's overlays to their <see cref="OverlayPlan"/>: reads the kernel (links, addresses, FDB and
/// neighbours: four rtnetlink dumps), applies only the differences. Bridges and VXLAN devices live in the daemon's
/// own namespace (<see cref="IOverlayKernel.Netns"/>), where the ingress sandbox's and the tasks' legs attach to them.
/// The kernel is read again only when the plan changed, at each resync, or after a failure: a pass over an unchanged
/// plan costs nothing. What left (<see cref="OverlayChange.Deferred"/>) is removed later, by <see cref="FinishAsync"/>.
/// </summary>
public sealed partial class OverlayNetworks(IOverlayKernel kernel, DaemonOptions options, ILogger<OverlayNetworks> logger, DepartedPeers? departed = null)
    : INamespaceExecutor<OverlayPlan>
{
    private readonly DepartedPeers _departed = departed ?? new DepartedPeers();
    private (string Fingerprint, long At)? _applied;
    private (string Fingerprint, List<OverlayChange> Changes)? _deferred;

    public async Task<bool> ConvergeAsync(NetworkNamespacePath netns, OverlayPlan desired, CancellationToken cancellationToken) =>
        (await ChangesAsync(netns, desired, cancellationToken).ConfigureAwait(false)).Changes > 0;

    /// <summary>Converges the overlays: how many changes were made, and whether links were among them (then what attaches to them is checked again).</summary>
    public Task<(int Changes, bool Links)> ChangesAsync(NetworkNamespacePath netns, OverlayPlan desired, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(desired);
        if (netns != kernel.Netns)
        {
            throw new ArgumentException($"the overlays are converged in {kernel.Netns}, not {netns}", nameof(netns));
        }

        try
        {
            if (_applied is { } applied && Stopwatch.GetElapsedTime(applied.At) < options.ResyncInterval
                && WithDeparted(desired).Fingerprint == applied.Fingerprint)
            {
                return Task.FromResult((0, false));
            }

            _applied = null;
            _deferred = null;
            ct.ThrowIfCancellationRequested();
            var read = kernel.Read();
            var underlay = Underlay.Find(read, desired.Local);
            _departed.Adopt(read);
            var plan = WithDeparted(desired);
            var changes = OverlayDiff.Changes(plan, underlay, read);
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

    /// <summary>The plan with the remote endpoints that left it lately still in (<see cref="DepartedPeers"/>).</summary>
    private OverlayPlan WithDeparted(OverlayPlan desired) => _departed.Extend(desired, () => desired.AddressesInUse);
}
