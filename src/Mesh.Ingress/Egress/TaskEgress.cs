using System.Diagnostics;
using Mesh.Discovery.Model;
using Mesh.Ingress.Daemon;
using Mesh.Ingress.Kernel;
using Microsoft.Extensions.Logging;

namespace Mesh.Ingress.Egress;

/// <summary>
/// Each local task's way out, as Docker's docker_gwbridge: a veth from the task (<c>gw0</c>, its default route via the
/// gateway bridge's address) to the node's gateway bridge; the node masquerades what leaves through it
/// (<see cref="Dataplane.HostRules"/>). A leg is checked when its task is new or changed and at each resync, so a pass
/// over unchanged tasks reads nothing. Only namespaces that pass <see cref="TaskNamespaceGuard"/> are entered; a
/// task whose leg fails is logged and retried, and holds up no other task (its DNS and rules are converged apart).
/// </summary>
public sealed partial class TaskEgress(INetworkLinks links, TaskNamespaceGuard guard, DaemonOptions options, ILogger<TaskEgress> logger)
{
    private readonly Dictionary<string, (EgressLeg Leg, long At)> _checked = new(StringComparer.Ordinal);
    private (string Wanted, long At)? _swept;

    /// <summary>Converges the legs; returns how many were changed.</summary>
    public async Task<int> ConvergeAsync(ClusterState state, CancellationToken ct)
    {
        var legs = EgressPlanner.Plan(state, options.Node, options.Network);
        var due = legs.Where(l => !(_checked.TryGetValue(l.Task, out var c) && c.Leg == l && Stopwatch.GetElapsedTime(c.At) < options.ResyncInterval)).ToList();
        foreach (var gone in _checked.Keys.Except(legs.Select(l => l.Task)).ToList())
        {
            _checked.Remove(gone);
        }

        var wantedText = string.Join(',', legs.Select(l => l.HostVeth));
        var sweep = _swept is not { } swept || swept.Wanted != wantedText || Stopwatch.GetElapsedTime(swept.At) >= options.ResyncInterval;
        if (due.Count == 0 && !sweep)
        {
            return 0;
        }

        var self = NetworkNamespacePath.Current;
        var host = await links.ReadLinksAsync(self, ct).ConfigureAwait(false);
        var changed = 0;

        // The node's ends of legs whose task left this node (a namespace that is gone took its end with it).
        var wanted = legs.Select(l => l.HostVeth).ToHashSet(StringComparer.Ordinal);
        foreach (var stale in host.Keys.Where(n => n.StartsWith(EgressPlanner.HostPrefix, StringComparison.Ordinal) && n.Length == EgressPlanner.HostPrefix.Length + 8 && !wanted.Contains(n)))
        {
            await links.TryDeleteLinkAsync(self, stale, ct).ConfigureAwait(false);
            changed++;
        }

        _swept = (wantedText, Stopwatch.GetTimestamp());
        var reserved = guard.Reserved();
        foreach (var leg in due)
        {
            try
            {
                guard.Check(leg.NetnsPath, reserved);
                if (await EnsureAsync(leg, host, ct).ConfigureAwait(false))
                {
                    changed++;
                    LogLeg(leg.Task, leg.HostVeth, leg.Address);
                }

                _checked[leg.Task] = (leg, Stopwatch.GetTimestamp());
            }
            catch (Exception e) when (e is Mesh.Ipvs.Netlink.NetlinkException or CommandFailedException or IOException or ValidationException or TaskRefusedException)
            {
                // The task's own sync reports a bad or missing namespace; a failing change is retried next pass.
                LogLegFailed(leg.Task, e.Message);
            }
        }

        return changed;
    }

    private async Task<bool> EnsureAsync(EgressLeg leg, IReadOnlyDictionary<string, LinkState> host, CancellationToken ct)
    {
        var self = NetworkNamespacePath.Current;
        var task = new NetworkNamespacePath(leg.NetnsPath);
        var inside = await links.ReadLinksAsync(task, ct).ConfigureAwait(false);
        var changed = false;
        if (!host.TryGetValue(leg.HostVeth, out var end) || !inside.ContainsKey(EgressPlanner.TaskInterface))
        {
            // Either half alone is left from a crash between two steps: start again.
            await links.TryDeleteLinkAsync(self, leg.HostVeth, ct).ConfigureAwait(false);
            await links.TryDeleteLinkAsync(task, EgressPlanner.TaskInterface, ct).ConfigureAwait(false);
            await links.AddVethAsync(self, leg.HostVeth, null, EgressPlanner.TaskInterface, null, task, ct).ConfigureAwait(false);
            inside = await links.ReadLinksAsync(task, ct).ConfigureAwait(false);
            end = null;
            changed = true;
        }

        if (end is null || end.Master != options.Network.GatewayBridge || !end.Up)
        {
            await links.SetLinkAsync(self, leg.HostVeth, new LinkSettings(Master: options.Network.GatewayBridge, Up: true), ct).ConfigureAwait(false);
            changed = true;
        }

        var leg0 = inside[EgressPlanner.TaskInterface];
        if (!leg0.Ipv4Addresses.Contains(leg.Address))
        {
            await links.ReplaceAddressAsync(task, leg.Address, EgressPlanner.TaskInterface, ct).ConfigureAwait(false);
            changed = true;
        }

        if (!leg0.Up)
        {
            await links.SetLinkAsync(task, EgressPlanner.TaskInterface, new LinkSettings(Up: true), ct).ConfigureAwait(false);
            changed = true;
        }

        if (await links.ReadDefaultGatewayAsync(task, ct).ConfigureAwait(false) != options.Network.GatewayAddress)
        {
            await links.ReplaceRouteAsync(task, new RouteEntry("default", options.Network.GatewayAddress, EgressPlanner.TaskInterface), 254, ct).ConfigureAwait(false);
            changed = true;
        }

        return changed;
    }
}
