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
}
