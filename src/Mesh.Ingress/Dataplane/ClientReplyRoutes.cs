using System.Globalization;
using Mesh.Discovery.Model;
using Mesh.Ingress.Kernel;

namespace Mesh.Ingress.Dataplane;

/// <summary>
/// Replies of connections that keep the client's address (<c>mode=host</c>, <c>traffic=local</c>) must go back through
/// the node that DNATed them: conntrack there un-NATs them. Both kinds reach only the node's own tasks, so that node
/// is always the task's own. Without SNAT the task sees a destination outside every overlay, and has no route to it
/// (or, under a real runtime, a default route of its own that bypasses the mesh). So, in the task's namespace: a
/// policy rule <c>from &lt;ingress address&gt; lookup 4096</c> (priority 4096), and table 4096 holds the ingress subnet on
/// link and a default route via this node's sandbox (its ingress address), which routes on to the node. Only packets
/// sourced from the ingress address follow it (replies to connections that arrived there); the task's own
/// connections still use its main table, so the mesh gives no task a way out it did not have.
/// </summary>
public sealed class ClientReplyRoutes(INetworkLinks links)
{
    /// <summary>Routing table and rule priority (4096: the ingress overlay's VNI).</summary>
    public const int Table = 4096;

    /// <summary>True when a task of <paramref name="service"/> can receive connections from outside the overlay without SNAT.</summary>
    public static bool Needed(ClusterService service) => service.Ports.Any(p => p.KeepsClientAddress);

    /// <summary>Converges the rule and table in <paramref name="netns"/>; returns whether anything was written.</summary>
    public async Task<bool> EnsureAsync(NetworkNamespacePath netns, string taskAddress, string sandboxAddress, CancellationToken ct)
    {
        var link = (await links.ReadLinksAsync(netns, ct).ConfigureAwait(false)).Values
            .FirstOrDefault(l => l.Ipv4Addresses.Any(a => a.StartsWith(taskAddress + "/", StringComparison.Ordinal)));
        if (link is null)
        {
            // The runtime registers a task before or after attaching its legs (the lab: before). Failing the task
            // makes the daemon retry it within a second or two instead of at the next resync, with clients timing out meanwhile.
            throw new InvalidOperationException($"the task's ingress address {taskAddress} is on no link of its namespace yet: replies to clients cannot be routed");
        }

        var subnet = OverlayNetwork.Ingress.Subnet;
        var changed = false;
        var routes = await links.ReadRoutesAsync(netns, Table, ct).ConfigureAwait(false);
        if (!routes.Any(r => r.Destination == subnet && r.Gateway is null && r.Device == link.Name))
        {
            await links.ReplaceRouteAsync(netns, new RouteEntry(subnet, null, link.Name), Table, ct).ConfigureAwait(false);
            changed = true;
        }

        if (!routes.Any(r => r.Destination == "default" && r.Gateway == sandboxAddress && r.Device == link.Name))
        {
            await links.ReplaceRouteAsync(netns, new RouteEntry("default", sandboxAddress, link.Name), Table, ct).ConfigureAwait(false);
            changed = true;
        }

        var rules = await links.ReadRulesAsync(netns, Table, ct).ConfigureAwait(false);
        if (rules.Count != 1 || rules[0] != (taskAddress, Table.ToString(CultureInfo.InvariantCulture)))
        {
            foreach (var _ in rules)
            {
                await links.DeleteRuleAsync(netns, Table, ct).ConfigureAwait(false);
            }

            await links.AddRuleAsync(netns, taskAddress, Table, Table, ct).ConfigureAwait(false);
            changed = true;
        }

        return changed;
    }
}
