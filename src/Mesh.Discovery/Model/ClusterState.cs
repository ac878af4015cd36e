namespace Mesh.Discovery.Model;

/// <summary>An immutable snapshot of the whole cluster at one store revision.</summary>
public sealed record ClusterState
{
    public long Revision { get; init; }
    public IReadOnlyList<OverlayNetwork> Networks { get; init; } = [OverlayNetwork.Ingress];
    public IReadOnlyList<ClusterNode> Nodes { get; init; } = [];
    public IReadOnlyList<ClusterService> Services { get; init; } = [];
    public IReadOnlyList<ServiceTask> Tasks { get; init; } = [];

    public static ClusterState Empty { get; } = new();

    /// <summary>
    /// This state with each task's service and node names being the very strings of its service and node (the same
    /// text): a state read from JSON has its own copy in every task, 100,000 strings at 10,000 services × 5 tasks
    /// (BENCHMARKS.md, the daemon's memory). This state itself when nothing is to share.
    /// </summary>
    public ClusterState WithSharedNames()
    {
        var names = new Dictionary<string, string>(Services.Count + Nodes.Count, StringComparer.Ordinal);
        foreach (var name in Services.Select(s => s.Name).Concat(Nodes.Select(n => n.Name)))
        {
            names.TryAdd(name, name);
        }

        ServiceTask[]? tasks = null;
        for (var i = 0; i < Tasks.Count; i++)
        {
            var task = Tasks[i];
            var service = names.GetValueOrDefault(task.Service, task.Service);
            var node = names.GetValueOrDefault(task.Node, task.Node);
            if (!ReferenceEquals(service, task.Service) || !ReferenceEquals(node, task.Node))
            {
                tasks ??= [.. Tasks];
                tasks[i] = task with { Service = service, Node = node };
            }
        }

        return tasks is null ? this : this with { Tasks = tasks };
    }
}
