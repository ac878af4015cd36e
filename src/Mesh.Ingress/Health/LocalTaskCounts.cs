using System.Collections.Frozen;
using Mesh.Discovery.Model;

namespace Mesh.Ingress.Health;

/// <summary>
/// How many running tasks of each service this node ran in the last state it applied: what the health port answers.
/// Replaced whole after each sync (one reference swap), read by every probe without locking.
/// </summary>
public sealed class LocalTaskCounts
{
    private volatile FrozenDictionary<string, int>? _counts;

    /// <summary>Null until the first sync: the node does not know yet what it runs.</summary>
    public int? Of(string service) =>
        _counts is { } counts ? counts.TryGetValue(service, out var n) ? n : null : null;

    /// <summary>True once a state was applied; before, every service is "unknown" (503).</summary>
    public bool Known => _counts is not null;

    private (ClusterState? State, string? Node) _from;

    public void Update(ClusterState state, string node)
    {
        if (ReferenceEquals(state, _from.State) && node == _from.Node)
        {
            return; // the same state again (a resync): the counts follow from it
        }

        _from = (state, node);
        var running = state.Tasks.Where(t => t.Node == node && t.State == TaskState.Running)
            .GroupBy(t => t.Service, StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => g.Count(), StringComparer.OrdinalIgnoreCase);
        _counts = state.Services.ToFrozenDictionary(s => s.Name, s => running.GetValueOrDefault(s.Name), StringComparer.OrdinalIgnoreCase);
    }
}
