namespace Mesh.Ingress.Lab;

/// <summary>What <c>mesh lab up</c> built, kept in /run/mesh/lab/lab.json for status and down.</summary>
public sealed record LabState
{
    public required int Nodes { get; init; }
    public required int Replicas { get; init; }
    public required string Dataplane { get; init; }
    public string Store { get; init; } = "embedded";
    public int EtcdMembers { get; init; } = 1;
    public int LeaseTtlSeconds { get; init; } = 10;

    /// <summary>What runs the tasks (<see cref="LabPlan.NetnsRuntime"/> or <see cref="LabPlan.PodmanRuntime"/>): later lab commands start and remove tasks the same way.</summary>
    public string Runtime { get; init; } = LabPlan.NetnsRuntime;
    public DateTimeOffset Created { get; init; } = DateTimeOffset.UtcNow;
}
