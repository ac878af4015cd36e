using System.Text.Json;
using Mesh.Discovery.Model;
using Mesh.Ingress.Daemon;

namespace Mesh.Ingress.Ui;

/// <summary>
/// Turns the store's state and what this daemon knows of each node's daemon into the page's snapshot. Pure: the same
/// inputs give the same snapshot, so the event stream sends one only when something the page shows changed.
/// </summary>
public sealed class StatusSnapshotBuilder(NodeStatus self, PeerLiveness peers, TimeProvider clock)
{
    public StatusSnapshot Build(ClusterState state, string? storeError = null)
    {
        var nodes = state.Nodes.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => Row(n, state)).ToList();
        var tasks = state.Tasks.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var published = state.Services.Where(s => s.Ports.Count > 0).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

        // The routing mesh: every node's ingress balances a published port over every task of the service that is in
        // the backend set (running), wherever it runs.
        var links = (from node in nodes
                     from task in tasks
                     where published.Contains(task.Service) && task.State == TaskState.Running
                     select new IngressLink(node.Name, task.Name, task.Service)).ToList();

        return new StatusSnapshot(
            state.Revision,
            self.Node,
            clock.GetUtcNow(),
            storeError,
            nodes,
            state.Services.OrderBy(s => s.Name, StringComparer.Ordinal).Select(s => new ServiceRow(
                s.Name, Name(s.Mode), s.Ports.Select(p => p.ToString()).ToList(), s.Vips, s.Aliases, s.Networks)).ToList(),
            tasks.Select(t => new TaskRow(t.Name, t.Service, t.Node, Name(t.State), t.Addresses)).ToList(),
            links);
    }

    private NodeRow Row(ClusterNode node, ClusterState state)
    {
        if (string.Equals(node.Name, self.Node, StringComparison.OrdinalIgnoreCase))
        {
            return new NodeRow(node.Name, node.AdvertiseAddress, node.IngressSandboxIp, "up", "this daemon",
                self.Dataplane, self.AppliedRevision < 0 ? null : self.AppliedRevision, self.LastError);
        }

        if (peers.Of(node.Name) is { } peer)
        {
            return new NodeRow(node.Name, node.AdvertiseAddress, node.IngressSandboxIp, peer.Alive ? "up" : "down",
                "its watch on this store", null, peer.AppliedRevision, null);
        }

        // With etcd the store marks the tasks of a node whose lease expired (node_down): the only sign of it here.
        var own = state.Tasks.Where(t => string.Equals(t.Node, node.Name, StringComparison.OrdinalIgnoreCase)).ToList();
        return own.Count == 0
            ? new NodeRow(node.Name, node.AdvertiseAddress, node.IngressSandboxIp, "unknown", "not seen by this daemon", null, null, null)
            : new NodeRow(node.Name, node.AdvertiseAddress, node.IngressSandboxIp,
                own.Any(t => t.State == TaskState.NodeDown) ? "down" : "up", "its tasks' state in the store", null, null, null);
    }

    private static string Name<T>(T value) where T : struct, Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());
}
