using System.Collections.Frozen;

namespace Mesh.Ingress.HealthChecks;

/// <summary>
/// One node's health verdicts at one moment, as the planners use them: the tasks this node found unhealthy. Immutable,
/// so a pass plans from one consistent view while probes go on.
/// </summary>
public sealed class BackendHealth(FrozenSet<string> unhealthy)
{
    public static BackendHealth None { get; } = new(FrozenSet<string>.Empty);

    /// <summary>Task names this node found unhealthy.</summary>
    public FrozenSet<string> Unhealthy { get; } = unhealthy;

    public bool IsUnhealthy(string task) => Unhealthy.Contains(task);
}
